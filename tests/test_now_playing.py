"""Now playing: the composer's sections as a station shows them (API, WebSocket message, ICY title)."""

import dataclasses
import json

import pytest

from auralis_ray.music.composer import SECTION_HISTORY, Composer
from auralis_ray.music.now_playing import (BLOOM, DRIFT, PULSE, STILL, NowPlaying, now_playing_at,
                                           now_playing_changes, section_character, sections_over, stream_title)
from auralis_ray.music.params import StationParams
from auralis_ray.synth.voices import GRID

SR = 44100
CHUNK = 4410  # frames per 100 ms chunk


def composed(preset: str = "focus", seed: int = 11, seconds: float = 600, start_frame: int = 0) -> Composer:
    composer = Composer(StationParams.from_preset(preset), seed, SR, start_frame=start_frame)
    composer.compose_until(int(seconds * SR))
    return composer


def test_section_starts_are_where_the_composer_changes_section():
    composer = Composer(StationParams.from_preset("focus"), 11, SR)
    changes = []
    while composer.cursor < 600 * SR:
        before, start = composer.section, composer.cursor
        composer._phrase()
        if composer.section is not before:
            changes.append((start, composer.section))
    starts = composer.section_starts
    assert [(s.frame, s.section) for s in starts] == changes[-SECTION_HISTORY:]
    assert [s.number for s in starts] == list(range(1, len(starts) + 1))
    assert starts[0].frame == 0 and all(s.params == StationParams.from_preset("focus") for s in starts)


def test_recording_sections_leaves_the_music_unchanged():
    """The same seed composes the same notes whether or not anyone asks what is playing."""
    quiet, asked = Composer(StationParams.from_preset("sleep"), 5, SR), Composer(StationParams.from_preset("sleep"), 5, SR)
    notes_quiet = quiet.compose_until(300 * SR)
    notes_asked = []
    for second in range(0, 301, 10):
        notes_asked += asked.compose_until(second * SR)
        now_playing_at(asked, second * SR, CHUNK)
    assert notes_asked == notes_quiet


def test_now_playing_at_a_frame_is_the_section_sounding_there():
    composer = composed()
    starts = composer.section_starts
    for here, following in zip(starts, starts[1:]):
        for frame in (here.frame, (here.frame + following.frame) // 2, following.frame - 1):
            now = now_playing_at(composer, frame, CHUNK)
            assert now.section_number == here.number and now.since_chunk_id == here.frame // CHUNK
    last = now_playing_at(composer, composer.cursor - 1, CHUNK)
    assert last.section_number == starts[-1].number
    assert now_playing_at(composer, composer.cursor, CHUNK) is None  # not composed yet
    assert now_playing_at(Composer(StationParams(), 1, SR), 0, CHUNK) is None  # nothing composed


def test_sections_last_30_to_90_seconds_so_now_playing_changes_that_often():
    starts = composed(seconds=900).section_starts
    lengths = [(b.frame - a.frame) / SR for a, b in zip(starts, starts[1:])]
    assert len(lengths) >= 8
    assert min(lengths) >= 30 - 17 and max(lengths) <= 90 + 17  # a section ends on a phrase boundary


def test_a_new_key_starts_a_new_section_at_the_next_phrase():
    composer = composed(seconds=100)
    before = now_playing_at(composer, composer.cursor - 1, CHUNK)
    changed_at = composer.cursor
    composer.set_params(composer.params.updated(key="Bb", mode="lydian", bpm=60))
    composer.compose_until(changed_at)
    now = now_playing_at(composer, changed_at, CHUNK)
    assert (now.key, now.mode, now.bpm) == ("Bb", "lydian", 60.0)
    assert now.section_number == before.section_number + 1 and now.since_chunk_id == changed_at // CHUNK
    assert now_playing_at(composer, changed_at - 1, CHUNK) == before


def test_changes_within_a_rendered_block():
    composer = composed(seconds=400)
    starts = composer.section_starts
    block = (starts[3].frame - 5 * SR, starts[3].frame + 5 * SR)
    assert now_playing_changes(composer, *block, CHUNK) == [NowPlaying.from_section_start(starts[3], CHUNK)]
    assert now_playing_changes(composer, starts[3].frame + 1, starts[4].frame, CHUNK) == []
    assert len(now_playing_changes(composer, 0, composer.cursor, CHUNK)) == len(starts)


def test_a_composer_attached_mid_timeline_counts_chunks_from_its_start_frame():
    start_frame = 123_456 * CHUNK
    composer = composed(seconds=start_frame / SR + 60, start_frame=start_frame)
    now = now_playing_at(composer, start_frame, CHUNK)
    assert now.since_chunk_id == 123_456 and now.section_number == 1


def test_the_history_is_bounded():
    composer = composed(seconds=3600 * 2)
    assert len(composer.section_starts) == SECTION_HISTORY
    assert composer.section_starts[-1].number > SECTION_HISTORY
    assert now_playing_at(composer, 0, CHUNK) is None  # forgotten


@pytest.mark.parametrize("preset", ["focus", "meditation", "sleep", "bright"])
def test_now_playing_fields_and_title(preset):
    composer = composed(preset, seconds=120)
    now = now_playing_at(composer, 60 * SR, CHUNK)
    params = StationParams.from_preset(preset)
    assert (now.preset, now.key, now.mode, now.bpm) == (preset, params.key, params.mode, params.bpm)
    assert now.section in (PULSE, BLOOM, STILL, DRIFT)
    message = json.loads(json.dumps(now.as_dict()))
    assert message == {"preset": preset, "key": params.key, "mode": params.mode, "bpm": params.bpm,
                       "section": now.section, "section_number": now.section_number,
                       "since_chunk_id": now.since_chunk_id}
    title = stream_title(now)
    assert title.startswith(f"{preset.capitalize()}: {params.key} {params.mode}, {params.bpm:g} bpm, ")
    assert title.endswith(f"{now.section} (section {now.section_number})")
    assert stream_title(now, "night") == f"night - {title}"
    assert "';" not in title and title.isascii()


def test_section_character_follows_texture():
    bright = {section_character(s.section) for s in composed("bright", seconds=1200).section_starts}
    sleep = {section_character(s.section) for s in composed("sleep", seconds=1200).section_starts}
    assert PULSE in bright
    assert PULSE not in sleep and STILL in sleep  # sleep is too calm to drum, and sparse


def test_sections_over_a_block_are_the_one_sounding_then_those_that_begin():
    composer = composed(seconds=400)
    starts = composer.section_starts
    block = (starts[3].frame - 5 * SR, starts[3].frame + 5 * SR)
    assert sections_over(composer, *block, CHUNK) == [NowPlaying.from_section_start(starts[2], CHUNK),
                                                     NowPlaying.from_section_start(starts[3], CHUNK)]
    assert sections_over(composer, starts[3].frame, starts[3].frame + SR, CHUNK) == [
        NowPlaying.from_section_start(starts[3], CHUNK)]  # a section that begins at the block's start: once


def test_a_section_is_the_same_wherever_it_is_said_to_start():
    now = now_playing_at(composed(seconds=120), 60 * SR, CHUNK)
    moved = now.starting_at(now.since_chunk_id + 7)
    assert moved.since_chunk_id == now.since_chunk_id + 7 and moved.same_section(now) and now.same_section(moved)
    assert not now.same_section(dataclasses.replace(now, section_number=now.section_number + 1))
    assert NowPlaying.from_dict(json.loads(json.dumps(now.as_dict()))) == now


def test_the_engine_reports_what_each_station_plays_over_what_it_rendered():
    from auralis_ray.config import GPUConfig
    from auralis_ray.core_settings import batch_render_config
    from auralis_ray.synth.engine import OptimizedSynthesisEngine

    engine = OptimizedSynthesisEngine(batch_render_config(GPUConfig(device="cpu")), block_frames=20 * CHUNK)
    engine.add_station("a", StationParams.from_preset("sleep"), 4, start_frame=500 * CHUNK)
    reference = Composer(StationParams.from_preset("sleep"), 4, SR, start_frame=500 * CHUNK, grid=GRID)
    engine.render_block()
    reference.compose_until(520 * CHUNK)
    block = (500 * CHUNK, 520 * CHUNK)
    assert engine.now_playing("a", *block) == sections_over(reference, *block, CHUNK)
    (first,) = engine.now_playing("a", *block)
    assert first.preset == "sleep" and first.section_number == 1 and first.since_chunk_id in (499, 500)
