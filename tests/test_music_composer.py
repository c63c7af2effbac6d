import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from auralis_ray.music.composer import Composer
from auralis_ray.music.params import StationParams
from auralis_ray.music.theory import KEY_NAMES, MODES, chord_pcs, key_pc, scale_pcs, voice_lead

SR = 44100
PITCHED = ("pad", "bass", "lead", "thump")


def _notes(params, seed=1, seconds=240, start_frame=0):
    return Composer(params, seed, SR, start_frame=start_frame).compose_until(seconds * SR)


def test_same_seed_same_notes_other_seed_other_notes():
    p = StationParams.from_preset("focus")
    assert _notes(p, 5) == _notes(p, 5)
    assert _notes(p, 5) != _notes(p, 6)
    assert _notes(p, 5, start_frame=44100 * 60) != _notes(p, 5)


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(KEY_NAMES), mode=st.sampled_from(sorted(MODES)), bpm=st.floats(40, 120),
       intensity=st.floats(0, 1), density=st.floats(0, 1), variety=st.floats(0, 1), seed=st.integers(0, 2**40))
def test_every_pitched_note_is_in_the_key(key, mode, bpm, intensity, density, variety, seed):
    p = StationParams(key=key, mode=mode, bpm=bpm, intensity=intensity, density=density, variety=variety)
    notes = Composer(p, seed, SR).compose_until(60 * SR)
    scale = set(scale_pcs(key, mode))
    assert notes and all(int(n.midi) % 12 in scale for n in notes if n.instrument in PITCHED)
    grid = Composer(p, seed, SR).grid
    assert all(n.start % grid == 0 and n.gate % grid == 0 and n.release % grid == 0 for n in notes)
    assert all(n.gate > 0 and n.attack > 0 for n in notes)


def test_pad_chords_are_full_and_voice_led():
    p = StationParams.from_preset("focus")
    c = Composer(p, 3, SR)
    chords = []
    while c.cursor < 300 * SR:
        c._phrase()
        chords.append(c.voicing)
    motion = [sum(abs(a - b) for a, b in zip(x, y)) for x, y in zip(chords, chords[1:])]
    assert all(len({m % 12 for m in ch}) >= 3 for ch in chords)  # triads or sevenths, never bare fifths
    assert np.mean(motion) <= 7 and max(motion) <= 24  # register moves at section changes
    assert len(set(chords)) >= 5


def test_voice_lead_picks_smallest_motion():
    scale = scale_pcs("C", "ionian")
    prev = (48, 52, 55, 60)  # C E G C
    nxt = voice_lead(prev, chord_pcs(scale, 5, 3), 45, 72)  # A minor
    assert sum(abs(a - b) for a, b in zip(prev, nxt)) <= 3
    assert {m % 12 for m in nxt} == {9, 0, 4}


def test_sections_change_every_30_to_90_seconds_and_melody_has_rests():
    p = StationParams.from_preset("focus")
    c = Composer(p, 11, SR)
    sections = []
    while c.cursor < 600 * SR:
        before = c.section
        start = c.cursor
        c._phrase()
        if c.section is not before:
            sections.append(start)
    lengths = np.diff(sections) / SR
    assert len(sections) >= 7
    assert lengths.min() >= 30 - 17 and lengths.max() <= 90 + 17  # a section ends on a phrase boundary
    lead = [n for n in _notes(p, 11, 240) if n.instrument == "lead"]
    gaps = [b.start - (a.start + a.gate) for a, b in zip(lead, lead[1:])]
    assert max(gaps) > 2 * SR  # phrasing: the melody breathes
    assert len({n.midi for n in lead}) >= 6  # contour, not a drone


def test_intensity_drives_percussion_and_swells():
    calm = _notes(StationParams.from_preset("focus", intensity=0.0), 2)
    busy = _notes(StationParams.from_preset("focus", intensity=1.0), 2)
    count = lambda ns, kind: sum(n.instrument == kind for n in ns)  # noqa: E731
    assert count(calm, "thump") == 0 and count(busy, "thump") > 50
    assert count(busy, "swell") > count(calm, "swell")


def test_set_params_applies_at_the_next_phrase():
    p = StationParams.from_preset("focus", key="C", mode="ionian")
    c = Composer(p, 4, SR)
    first = c.compose_until(0)
    boundary = c.cursor
    c.set_params(p.updated(key="F#", mode="lydian"))
    later = c.compose_until(boundary + 30 * SR)
    assert all(n.start < boundary + 200 for n in first)
    old, new = set(scale_pcs("C", "ionian")), set(scale_pcs("F#", "lydian"))
    assert all(int(n.midi) % 12 in old for n in first if n.instrument in PITCHED)
    assert all(int(n.midi) % 12 in new for n in later if n.instrument in PITCHED)
    assert key_pc("F#") == 6


def test_bpm_sets_the_pulse():
    slow = [n.start for n in _notes(StationParams.from_preset("focus", bpm=40, intensity=1.0), 9, 120) if n.instrument == "thump"]
    fast = [n.start for n in _notes(StationParams.from_preset("focus", bpm=120, intensity=1.0), 9, 120) if n.instrument == "thump"]
    assert np.median(np.diff(slow)) > 2 * np.median(np.diff(fast))


@pytest.mark.parametrize("seconds", [3600 * 8])
def test_eight_hours_compose_quickly_and_never_stall(seconds):
    c = Composer(StationParams.from_preset("bright"), 1, SR)
    notes = c.compose_until(seconds * SR)
    starts = np.array([n.start for n in notes if n.instrument == "pad"])
    assert np.diff(np.unique(starts)).max() < 20 * SR
