"""Gap detection and the per-listener session, on a fake clock."""

import pytest

from auralis_ray.stream.codecs.opus_frame import encode_opus_frame
from auralis_ray.tools.loadtest.client import _handle
from auralis_ray.tools.loadtest.frames import decode_opus
from auralis_ray.tools.loadtest.gaps import GapDetector, Step
from auralis_ray.tools.loadtest.session import ListenerSession


def test_consecutive_ids_have_no_gap():
    g = GapDetector()
    assert [g.on_chunk(i) for i in range(100, 104)] == [Step.FIRST, Step.NEXT, Step.NEXT, Step.NEXT]
    assert g.unannounced_gaps == g.announced_skips == g.out_of_order == 0


def test_jump_without_overrun_is_unannounced_gap():
    g = GapDetector()
    g.on_chunk(1)
    assert g.on_chunk(5) == Step.UNANNOUNCED_GAP
    assert g.unannounced_gaps == 1 and g.missing_chunks == 3 and g.announced_skips == 0


def test_jump_right_after_buffer_overrun_is_announced():
    g = GapDetector()
    g.on_chunk(1)
    g.on_buffer_overrun()
    assert g.on_chunk(20) == Step.ANNOUNCED_SKIP
    assert g.announced_skips == 1 and g.skipped_chunks == 18 and g.unannounced_gaps == 0


def test_overrun_announces_only_the_next_chunk():
    g = GapDetector()
    g.on_chunk(1)
    g.on_buffer_overrun()
    g.on_chunk(2)  # no jump: the announcement is used up
    assert g.on_chunk(4) == Step.UNANNOUNCED_GAP
    assert g.unannounced_gaps == 1 and g.announced_skips == 0


def test_duplicate_or_step_back_is_out_of_order():
    g = GapDetector()
    g.on_chunk(5)
    assert g.on_chunk(5) == Step.OUT_OF_ORDER
    assert g.on_chunk(3) == Step.OUT_OF_ORDER
    assert g.on_chunk(6) == Step.NEXT
    assert g.out_of_order == 2 and g.unannounced_gaps == 0


def _session(window=(10.0, 20.0)):
    s = ListenerSession(0, "c0", window=window, prebuffer_chunks=5)
    s.on_handshake_start(9.0)
    return s


def test_session_splits_burst_from_live_and_measures_window_lateness():
    s = _session()
    s.on_established(server_time=9.010, arrived_at=9.012)
    for k in range(10):  # burst: published before the server greeted us
        s.on_audio(k, 8.0 + k * 0.1, now=9.015)
    s.on_audio(10, 9.1, now=9.105)  # live, before the window
    s.on_audio(11, 10.0, now=10.004)  # live, in the window: 4 ms late
    s.on_audio(12, 10.1, now=10.130)  # 30 ms late
    s.finish(10.2)
    summary = s.summary()
    assert summary.connected and summary.chunks == 13 and summary.live_chunks == 3
    assert abs(summary.established_ms - 12.0) < 1e-6
    assert abs(summary.first_audio_ms - 15.0) < 1e-6
    lateness = s.window_lateness_ms()
    assert [round(v, 6) for v in lateness] == [4.0, 30.0]
    assert summary.unannounced_gaps == 0 and summary.underruns == 0


def test_lateness_goes_by_arrival_at_the_socket_and_the_read_is_kept_beside_it():
    s = _session()
    s.on_established(server_time=9.010, arrived_at=9.012)
    s.on_audio(11, 10.0, now=10.070, arrived_at=10.004)  # reached the socket 4 ms late, read at 70 ms
    s.on_audio(12, 10.1, now=10.150, arrived_at=10.130)
    assert [round(v, 6) for v in s.window_lateness_ms()] == [4.0, 30.0]
    assert [round(v, 6) for v in s.window_lateness_ms(by_read=True)] == [70.0, 50.0]
    summary = s.summary()
    assert summary.first_audio_ms == pytest.approx(1004.0)  # by the arrival
    assert summary.first_audio_read_ms == pytest.approx(1070.0)


def test_the_player_goes_by_arrival_so_a_generator_reading_in_bunches_hears_no_underrun():
    """Chunks reach the socket every 100 ms; the generator, behind the server, reads them a second at
    a time. A listener elsewhere hears them as they arrive: no underrun."""
    s = _session()
    s.on_established(server_time=9.0, arrived_at=9.0)
    for k in range(40):
        arrived = 9.0 + k * 0.1
        s.on_audio(k, arrived, now=9.0 + (k // 10 + 1) * 1.0, arrived_at=arrived)
    s.finish(13.0)
    assert s.summary().underruns == 0
    by_read = _session()
    by_read.on_established(server_time=9.0, arrived_at=9.0)
    for k in range(40):  # the same reads, where the socket gives no stamp (arrival = read)
        by_read.on_audio(k, 9.0 + k * 0.1, now=9.0 + (k // 10 + 1) * 1.0)
    by_read.finish(13.0)
    assert by_read.summary().underruns > 0  # what the player would have counted by the read


def test_session_counts_gaps_skips_and_protocol_errors():
    s = _session()
    s.on_audio(0, 9.0, now=9.01)  # audio before connection_established
    s.on_established(server_time=9.0, arrived_at=9.02)
    s.on_audio(1, 9.1, now=9.1)
    s.on_audio(3, 9.3, now=9.3)  # unannounced
    s.on_error("BUFFER_OVERRUN")
    s.on_audio(9, 9.9, now=9.9)  # announced
    s.on_bad_frame()
    summary = s.summary()
    assert summary.bad_frames == 2
    assert summary.unannounced_gaps == 1 and summary.missing_chunks == 1
    assert summary.announced_skips == 1 and summary.skipped_chunks == 5
    assert summary.error_codes == {"BUFFER_OVERRUN": 1}


def test_session_never_established_is_a_failure_and_ignores_audio_after_finish():
    s = _session()
    s.on_failed("HTTP 403")
    assert s.summary().failure == "HTTP 403" and not s.summary().connected
    t = _session()
    t.on_established(9.0, 9.0)
    t.finish(9.5)
    t.on_audio(1, 9.6, 9.6)
    t.on_closed(1000, 9.7)
    assert t.summary().chunks == 0 and not t.summary().closed_early


def test_session_player_underruns_when_stream_stops():
    s = _session()
    s.on_established(9.0, 9.0)
    for k in range(5):
        s.on_audio(k, 8.5 + k * 0.1, now=9.0)
    s.on_closed(1011, 9.05)  # the server went away
    s.finish(12.0)
    summary = s.summary()
    assert summary.closed_early and summary.close_code == 1011
    assert summary.underruns == 1


def test_opus_frames_are_recorded_like_pcm_frames():
    s = _session()
    _handle(s, b'{"type": "connection_established", "server_time": 9.010}', True, 9.012, 9.012, decode_opus)
    frames = {k: encode_opus_frame(k, 9.996 + k * 0.1, [b"\xfc" + bytes(320)] * 5) for k in range(1, 12)}
    for k in (1, 2, 3, 5, 6):  # chunk 4 missing: an unannounced gap
        _handle(s, frames[k], False, 10.0 + k * 0.1, 10.0 + k * 0.1 + 0.002, decode_opus)
    _handle(s, frames[7][:-1], False, 10.7, 10.7, decode_opus)  # truncated: a bad frame
    s.finish(20.0)
    summary = s.summary()
    assert summary.chunks == 5 and summary.live_chunks == 5 and summary.bad_frames == 1
    assert summary.unannounced_gaps == 1 and summary.missing_chunks == 1
    assert list(s.window_chunk_ids()) == [1, 2, 3, 5, 6]
    assert [round(v, 3) for v in s.window_lateness_ms()] == [4.0] * 5  # by arrival, not by read
    assert summary.window_bytes == 5 * len(frames[1]) and summary.window_audio_s == pytest.approx(0.5)
    assert summary.stalls == 1  # nothing from 10.6 s to the end of the run at 20 s
