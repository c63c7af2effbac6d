"""Logic behind the actors, without Ray: SynthesisCore renders ahead and reports what each block plays;
StationCore encodes once into every wire form, on schedule, and keeps what it plays."""

import asyncio
import base64
import json

import numpy as np
import pytest

from auralis_ray.actors.synthesis import SynthesisCore
from auralis_ray.config import load_config
from auralis_ray.core_settings import station_settings
from auralis_ray.music.now_playing import NowPlaying
from auralis_ray.music.params import StationParams
from auralis_ray.stream.codecs import ogg_serial
from auralis_ray.stream.pool import EncodedChunk
from auralis_ray.stream.station import StationCore
from auralis_ray.stream.protocol import CHUNK_BYTES, CHUNK_SECONDS
from auralis_ray.stream.schedule import publish_time

EPOCH = 1_000.0


def config_json(**overrides) -> str:
    return load_config(**overrides).model_dump_json()


def test_station_encodes_each_chunk_once_and_serves_by_id():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    pcm = np.arange(3 * CHUNK_BYTES // 2, dtype="<i2").tobytes()
    assert station.next_needed_chunk(publish_time(EPOCH, 18)) == 20
    assert station.ingest(20, pcm) == 23
    assert station.ingest(20, pcm) == 23  # a repeated push changes nothing
    assert station.pool.encoded_count == 3
    now = publish_time(EPOCH, 21)
    wires = station.fetch(19, horizon_chunks=1, now=now)
    assert [w[0] for w in wires] == [20, 21, 22]
    cid, ts, binary, head, *compressed = wires[0]
    assert ts == publish_time(EPOCH, 20) and binary[16:] == pcm[:CHUNK_BYTES]
    message = json.loads(head + ',"buffer_depth":0,"current_tier":"normal"}')
    assert base64.b64decode(message["data"]) == pcm[:CHUNK_BYTES]
    assert len(compressed) == 4 and station.pool.compressed_count == 3  # every form, once per chunk
    assert station.fetch(19, horizon_chunks=0, now=now)[-1][0] == 21  # nothing past the horizon
    with pytest.raises(ValueError):
        station.ingest(30, b"\x00" * 100)


def test_station_refuses_a_push_from_a_replaced_timeline():
    """A block rendered for the old timeline, arriving after a restart, must not leave a hole."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    attach = station.next_needed_chunk(publish_time(EPOCH, 500))  # a restarted, empty station
    assert station.ingest(580, b"\x00" * CHUNK_BYTES * 10) == attach  # stale: far ahead, refused
    assert station.ring.latest_id is None and station.refused_pushes == 1
    assert station.ingest(attach, b"\x00" * CHUNK_BYTES * 10) == attach + 10
    assert station.ingest(attach + 30, b"\x00" * CHUNK_BYTES * 10) == attach + 10  # would leave a hole
    assert station.ingest(attach + 10, b"\x00" * CHUNK_BYTES * 10) == attach + 20


def test_station_accepts_every_attach_point_it_handed_out():
    """Station and synthesis starting together both ask; whichever timeline synthesis keeps is accepted."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    first = station.next_needed_chunk(publish_time(EPOCH, 100))  # the station announcing itself
    second = station.next_needed_chunk(publish_time(EPOCH, 115))  # synthesis asking after its start
    assert second > first
    assert station.ingest(first, b"\x00" * CHUNK_BYTES * 10) == first + 10


def test_station_asks_synthesis_to_continue_past_its_live_edge():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    assert station.next_needed_chunk(now) == 502  # empty after a restart: just past live
    station.ingest(502, b"\x00" * CHUNK_BYTES * 40)
    assert station.next_needed_chunk(now) == 532  # 10 chunks before the end held: crossfaded in
    station.fetch(501, horizon_chunks=33, now=now)  # a replica took up to 533
    assert station.next_needed_chunk(now) == 542  # nothing left to crossfade over: a plain continuation
    info = station.info(now + 3 * CHUNK_SECONDS)
    assert info["ready"] and info["lookahead_chunks"] == 541 - 503


def test_synthesis_renders_all_stations_ahead_in_one_call_and_applies_changes_between_renders():
    core = SynthesisCore(config_json(buffer={"lookahead_chunks": 20, "replica_prefetch_chunks": 5,
                                             "ready_ahead_chunks": 2, "replica_fetch_interval_sec": 0.2,
                                             "restart_crossfade_chunks": 5},
                                     gpu={"render_block_chunks": 10}))
    now = publish_time(EPOCH, 100)
    core.attach("a", EPOCH, 102, StationParams.from_preset("focus"), 1, handle=None)
    core.attach("b", EPOCH, 102, StationParams.from_preset("sleep"), 2, handle=None)
    assert not core.timelines  # queued until the render loop applies them
    core.apply_commands()
    assert core.needs_render(now) and core.lead_chunks(now) == {"a": 1, "b": 1}
    rendered = asyncio.run(core.render())
    assert {name: block.first_chunk_id for name, block in rendered.items()} == {"a": 102, "b": 102}
    assert all(len(block.pcm) == 10 * CHUNK_BYTES for block in rendered.values())
    for name, block in rendered.items():  # attached 10 s into the timeline: sounding from its first chunk
        first_chunk = np.frombuffer(block.pcm[:CHUNK_BYTES], "<i2").astype(np.float64) / 32768.0
        assert np.sqrt(np.mean(first_chunk ** 2)) > 0.01, name
        # what the block plays travels with it: the section sounding from its first chunk
        (playing, *_) = block.now_playing
        assert playing["since_chunk_id"] <= 102 and playing["section_number"] == 1
    assert rendered["b"].now_playing[0]["preset"] == "sleep"
    assert core.engine.render_count == 1 and core.blocks_rendered == 1
    second = asyncio.run(core.render())
    assert second["a"].first_chunk_id == 112 and not core.needs_render(now)
    # lead 21 against a look-ahead of 20: the loop may sleep two chunks, at most its wake period
    assert core.seconds_until_render(now, at_most=5.0) == pytest.approx(0.2)
    assert core.seconds_until_render(now, at_most=0.1) == 0.1
    assert all(112 <= section["since_chunk_id"] < 122 for section in second["a"].now_playing[1:])
    core.set_params("a", StationParams.from_preset("focus").updated(key="E"))
    core.apply_commands()
    assert core.engine.stations() == ["a", "b"]


def test_a_restarted_timeline_is_crossfaded_into_the_held_audio():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    start = station.next_needed_chunk(now)
    old = np.full((40 * CHUNK_BYTES) // 2, 8000, dtype="<i2").tobytes()
    station.ingest(start, old)  # held to start + 40
    point = station.next_needed_chunk(now)  # synthesis restarted
    assert point == start + 30
    new = np.full((20 * CHUNK_BYTES) // 2, -8000, dtype="<i2").tobytes()
    assert station.ingest(point, new) == start + 50
    pcm = np.frombuffer(b"".join(station.ring.get(c).pcm for c in range(start, start + 50)), "<i2")
    frames = pcm.reshape(-1, 2)[:, 0].astype(float)
    fade = frames[30 * 4410:40 * 4410]
    assert frames[30 * 4410 - 1] == 8000 and frames[40 * 4410] == -8000
    assert fade[0] > 7900 and fade[-1] < -7900 and np.all(np.diff(fade) <= 0)  # smooth, no step
    assert np.max(np.abs(np.diff(frames))) < 10  # the largest sample step anywhere (a cut: 16000)
    assert station.crossfades == 1
    binary = station.ring.get(start + 35).binary
    assert binary[16:] == pcm[35 * CHUNK_BYTES // 2:36 * CHUNK_BYTES // 2].tobytes()  # re-encoded
    assert station.ingest(point, new) == start + 50 and station.crossfades == 1  # a retry: nothing more


# ---- compressed forms: fixed once a replica may hold them ---------------------------------------

def steady(value: int, chunks: int) -> bytes:
    return np.full(chunks * CHUNK_BYTES // 2, value, dtype="<i2").tobytes()


def test_every_chunk_handed_out_has_compressed_forms_that_never_change():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    start = station.next_needed_chunk(now)
    station.ingest(start, steady(8000, 40))
    fetched = station.fetch(start - 1, horizon_chunks=30, now=now)  # a replica takes up to live + 30
    assert [w[0] for w in fetched] == list(range(start, 531))
    assert all(len(w) == 8 for w in fetched) and station.fixed_upto == 530
    point = station.next_needed_chunk(now)  # synthesis restarts: crossfaded in past what is fixed
    assert point == start + 30 > station.fixed_upto
    station.ingest(point, steady(-8000, 20))
    assert station.crossfades == 1
    again = station.fetch(start - 1, horizon_chunks=60, now=now)
    assert again[:len(fetched)] == fetched  # fixed: the same bytes in every form
    assert all(len(w) == 8 for w in again) and station.pool.compressed_count == len(again)
    assert station.pool.compressed_streams == 1  # one stream along the timeline, crossfade included


def test_a_crossfade_blends_only_the_chunks_not_fixed_yet():
    """A new timeline arriving late, after replicas fetched into the overlap, is blended over the rest."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    start = station.next_needed_chunk(now)
    station.ingest(start, steady(8000, 40))
    point = station.next_needed_chunk(now)
    assert point == start + 30
    later = publish_time(EPOCH, 506)  # synthesis took its time: replicas fetched up to point + 4 meanwhile
    fixed = station.fetch(start - 1, horizon_chunks=30, now=later)
    assert fixed[-1][0] == point + 4
    station.ingest(point, steady(-8000, 20))
    assert station.crossfades == 1
    assert station.fetch(start - 1, horizon_chunks=60, now=later)[:len(fixed)] == fixed
    frames = np.frombuffer(b"".join(station.ring.get(c).pcm for c in range(point, start + 50)), "<i2")[::2]
    fade = frames[5 * 4410:10 * 4410].astype(float)  # chunks point + 5 .. point + 9: the blend
    assert np.all(frames[:5 * 4410] == 8000) and np.all(frames[10 * 4410:] == -8000)
    assert fade[0] > 7900 and fade[-1] < -7900 and np.all(np.diff(fade) <= 0)


def test_chunks_are_fixed_by_their_publish_time_and_compressed_only_while_wanted():
    """With no replica fetching, the station fixes each chunk when it goes live; it compresses them
    only while a replica has asked for compressed forms within the last three fetch intervals."""
    config = load_config()
    station = StationCore("s", EPOCH, station_settings(config))
    start = station.next_needed_chunk(publish_time(EPOCH, 100))
    station.ingest(start, steady(100, 20), now=publish_time(EPOCH, 100))
    assert station.fixed_upto == -1  # nothing live yet
    station.ingest(start + 20, steady(100, 20), now=publish_time(EPOCH, 115))
    assert station.fixed_upto == 115 and station.pool.compressed_count == 0  # nobody listens to them
    plain = station.fetch(115, horizon_chunks=2, now=publish_time(EPOCH, 115), compressed=False)
    assert [len(w) for w in plain] == [4, 4] and not station.compressed_wanted(publish_time(EPOCH, 115))
    station.fetch(117, horizon_chunks=3, now=publish_time(EPOCH, 115))  # a replica with compressed listeners
    assert station.ring.get(118).compressed is not None and station.ring.get(117).compressed is None
    hold = 3 * config.buffer.replica_fetch_interval_sec
    station.ingest(start + 40, steady(100, 20), now=publish_time(EPOCH, 115) + hold - 0.05)
    last = station.fixed_upto
    assert all(station.ring.get(c).compressed is not None for c in range(118, last + 1))
    station.ingest(start + 60, steady(100, 20), now=publish_time(EPOCH, 115) + hold + 1.0)  # nobody asked since
    assert station.fixed_upto > last and station.ring.get(station.fixed_upto).compressed is None
    assert station.info(publish_time(EPOCH, 115) + hold + 1.0)["compressed_wanted"] is False


def test_a_compressed_fetch_after_a_quiet_spell_compresses_the_fixed_chunks_it_asks_for():
    """A replica's first compressed listener: the chunks of its burst were fixed without compressed
    forms; they get them now, in order, from the first asked for (a new stream), and keep them."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    start = station.next_needed_chunk(publish_time(EPOCH, 100))
    now = publish_time(EPOCH, 115)
    station.ingest(start, steady(100, 20), now=publish_time(EPOCH, 100))
    station.ingest(start + 20, steady(100, 20), now=now)
    assert station.fixed_upto == 115 and station.pool.compressed_count == 0
    burst = station.fetch(105, horizon_chunks=5, now=now)
    assert [w[0] for w in burst] == list(range(106, 121)) and all(len(w) == 8 for w in burst)
    assert EncodedChunk.from_transfer(burst[0]).compressed.ogg_serial == ogg_serial("s", 106)
    again = station.fetch(100, horizon_chunks=5, now=now)  # before the stream's start: cannot be encoded now
    before = 106 - start
    assert [len(w) for w in again[:before]] == [4] * before and again[before:] == burst
    assert station.pool.compressed_streams == 1


def test_the_compressed_stream_goes_on_over_chunks_fixed_before_it_started():
    """A replica's first compressed listener fetches forms up to just past the live edge, while
    another replica has already fixed chunks further ahead without them: the next fetch from either
    continues the one stream over those chunks, without a jump."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    start = station.next_needed_chunk(publish_time(EPOCH, 100))
    station.ingest(start, steady(100, 60), now=publish_time(EPOCH, 100))
    now = publish_time(EPOCH, 110)
    station.fetch(start - 1, horizon_chunks=30, now=now, compressed=False)  # a replica fixes up to 140
    assert station.fixed_upto == 140 and station.pool.compressed_count == 0
    station.fetch(100, horizon_chunks=5, now=now)  # the first compressed listener: forms for 101..115
    assert station.pool.next_compressed_id == 116
    later = station.fetch(140, horizon_chunks=35, now=now, compressed=False)  # the other replica's next fetch
    assert later[0][0] == 141 and all(len(w) == 8 for w in later)
    assert all(station.ring.get(c).compressed is not None for c in range(116, 141))
    assert station.pool.compressed_streams == 1


def test_a_hole_in_the_timeline_starts_a_new_compressed_stream():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    start = station.next_needed_chunk(publish_time(EPOCH, 100))
    station.ingest(start, steady(100, 10))
    first = station.fetch(start - 1, horizon_chunks=30, now=publish_time(EPOCH, 100))
    resume = station.next_needed_chunk(publish_time(EPOCH, 200))  # synthesis fell behind: the ring ran dry
    assert resume == 202
    station.ingest(resume, steady(100, 10))
    after = station.fetch(first[-1][0], horizon_chunks=30, now=publish_time(EPOCH, 200))
    assert [w[0] for w in after] == list(range(202, 212))
    header = lambda wire: EncodedChunk.from_transfer(wire).compressed  # noqa: E731
    assert header(first[0]).ogg_serial == ogg_serial("s", start)
    assert header(after[0]).ogg_serial == ogg_serial("s", 202)
    assert header(after[0]).ogg_header != header(first[0]).ogg_header
    assert station.pool.compressed_streams == 2


# ---- now playing ------------------------------------------------------------------------------

def section(number: int, since: int, key: str = "A") -> NowPlaying:
    return NowPlaying(preset="focus", key=key, mode="aeolian", bpm=60.0, section="drift", section_number=number,
                      since_chunk_id=since)


def test_the_station_keeps_what_it_plays_from_the_chunk_each_section_starts():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 100)
    start = station.next_needed_chunk(now)
    assert station.now_playing(now) is None
    # a composer attached at `start` reports its first section a little before the block (grid rounding)
    station.ingest(start, steady(1, 20), [section(1, start - 1)])
    station.ingest(start + 20, steady(1, 20), [section(1, start - 1), section(2, start + 31)])
    station.ingest(start + 20, steady(1, 20), [section(1, start - 1), section(2, start + 31)])  # a retry
    assert station.sections == [section(1, start), section(2, start + 31)]
    assert station.playing_at(start + 30) == section(1, start)
    assert station.playing_at(start + 31) == section(2, start + 31)
    assert station.now_playing(publish_time(EPOCH, start + 35)).section_number == 2
    reply = station.fetch_reply(start + 9, horizon_chunks=30, now=publish_time(EPOCH, start + 5))
    assert reply["epoch"] == EPOCH and [w[0] for w in reply["chunks"]] == list(range(start + 10, start + 36))
    first, second = reply["now_playing"]  # from the live edge to the last chunk fetched
    assert first["section_number"] == 1 and second["since_chunk_id"] == start + 31
    assert second["since"] == publish_time(EPOCH, start + 31) and second["station"] == "s"
    assert second["stream_title"] == "s - Focus: A aeolian, 60 bpm, drift (section 2)"
    nothing_new = station.fetch_reply(start + 35, 30, publish_time(EPOCH, start + 5))
    assert nothing_new["chunks"] == [] and [m["section_number"] for m in nothing_new["now_playing"]] == [1]  # live
    assert station.info(publish_time(EPOCH, start + 35))["now_playing"]["section_number"] == 2


def test_a_crossfaded_timeline_takes_over_what_plays_where_its_audio_does():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    start = station.next_needed_chunk(now)
    station.ingest(start, steady(8000, 20), [section(4, start - 50)])
    station.ingest(start + 20, steady(8000, 20), [section(4, start - 50), section(5, start + 35)])
    point = station.next_needed_chunk(now)  # synthesis restarts: a new composer, sections counted anew
    station.ingest(point, steady(-8000, 20), [section(1, point, key="E")])
    assert station.crossfades == 1
    assert station.sections == [section(4, start), section(1, point, key="E")]  # section 5 never sounds


def test_a_refused_push_says_nothing_about_what_plays():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    station.next_needed_chunk(publish_time(EPOCH, 500))
    station.ingest(580, steady(0, 10), [section(3, 570)])
    assert station.refused_pushes == 1 and station.sections == []
