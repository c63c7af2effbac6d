"""SimulatedPlayer: prebuffer, steady playback, underrun and re-prebuffer, on a fake clock."""

import pytest

from auralis_ray.tools.loadtest.player import SimulatedPlayer


def test_waits_for_prebuffer_and_never_underruns_before_playing():
    p = SimulatedPlayer(prebuffer_chunks=5)
    for i in range(4):
        p.push(i * 1.0)  # one chunk a second: far too slow, but not playing yet
    p.advance(100.0)
    assert not p.playing and p.underruns == 0 and p.played == 0 and p.buffered == 4


def test_starts_on_fifth_chunk_and_plays_steady_stream_without_underrun():
    p = SimulatedPlayer(prebuffer_chunks=5, chunk_s=0.1)
    for _ in range(5):
        p.push(0.0)  # burst
    assert p.playing and p.starts == 1 and p.played == 1 and p.buffered == 4
    for k in range(1, 101):  # then one chunk per 100 ms, each 50 ms before it is due
        p.push(0.35 + k * 0.1)
    p.advance(10.45)  # chunk j is taken at j * 0.1: all 105 are played by now
    assert p.underruns == 0
    assert p.played == 105 and p.buffered == 0


def test_underrun_when_a_due_chunk_is_missing_then_reprebuffers():
    p = SimulatedPlayer(prebuffer_chunks=5, chunk_s=0.1)
    for _ in range(5):
        p.push(0.0)
    # chunks are taken at 0.0, 0.1, 0.2, 0.3, 0.4; at 0.5 the buffer is empty
    p.advance(0.5)
    assert p.underruns == 0 and p.played == 5  # due exactly now: not late yet
    p.advance(0.5001)
    assert p.underruns == 1 and not p.playing
    p.advance(5.0)
    assert p.underruns == 1  # a stopped player does not count more underruns
    for t in (5.0, 5.1, 5.2, 5.3):
        p.push(t)
    assert not p.playing  # needs five again
    p.push(5.4)
    assert p.playing and p.starts == 2 and p.played == 6


def test_chunk_arriving_exactly_when_due_is_in_time():
    p = SimulatedPlayer(prebuffer_chunks=1, chunk_s=0.1)
    p.push(0.0)  # played at once; next due at 0.1
    p.push(0.1)
    assert p.underruns == 0 and p.buffered == 1
    p.advance(0.15)
    assert p.underruns == 0 and p.played == 2


def test_late_chunk_beyond_buffer_is_one_underrun():
    p = SimulatedPlayer(prebuffer_chunks=5, chunk_s=0.1)
    for _ in range(10):
        p.push(0.0)  # one second of audio
    p.push(0.95)  # still in time (buffer lasts to 1.0)
    p.push(1.25)  # due at 1.1: late
    assert p.underruns == 1


def test_rejects_time_going_backwards_and_bad_settings():
    p = SimulatedPlayer()
    p.advance(2.0)
    with pytest.raises(ValueError):
        p.advance(1.0)
    with pytest.raises(ValueError):
        SimulatedPlayer(prebuffer_chunks=0)
    with pytest.raises(ValueError):
        SimulatedPlayer(chunk_s=0)
