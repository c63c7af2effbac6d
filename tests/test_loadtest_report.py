"""Percentiles, report merging, goals, CPU arithmetic and the wire codec."""

import base64
import json
import os

import numpy as np
import pytest

from auralis_ray.tools.loadtest.config import Goals, LoadTestConfig
from auralis_ray.tools.loadtest.frames import (
    CHUNK_BYTES,
    AudioFrame,
    ControlMessage,
    FrameError,
    decode_binary,
    decode_opus,
    decode_text,
    encode_audio_json,
    encode_binary,
)
from auralis_ray.tools.loadtest.procmon import ProcSample, cpu_percent_between
from auralis_ray.tools.loadtest.report import (ProcessUsage, build_report, cpu_ratio, format_report,
                                               format_side_by_side, late_ticks, marginal_us_per_listener_per_100ms)
from auralis_ray.tools.loadtest.session import ListenerSummary
from auralis_ray.tools.loadtest.stats import fraction_within, percentile, summarize

# -- stats ------------------------------------------------------------------------------


def test_nearest_rank_percentiles():
    values = np.arange(1, 1001, dtype=float)  # 1..1000
    s = summarize(values[::-1])  # order does not matter
    assert (s.count, s.p50, s.p95, s.p99, s.p999, s.max) == (1000, 500, 950, 990, 999, 1000)
    assert percentile([7.0], 99.9) == 7.0
    assert summarize(np.arange(1, 101)).p999 == 100  # p99.9 of 100 values is the max
    assert summarize([]).p50 is None and summarize([]).count == 0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_fraction_within_is_inclusive():
    assert fraction_within([10, 20, 50, 51], 50) == 0.75
    assert fraction_within([], 50) is None


# -- report ------------------------------------------------------------------------------


def _ok(i, **kw):
    base = dict(index=i, client_id=f"c{i}", connected=True, established_ms=5.0 + i,
                first_audio_ms=8.0 + i, chunks=60, live_chunks=50)
    base.update(kw)
    return ListenerSummary(**base)


def _config(n, **kw):
    return LoadTestConfig(url="ws://h:1", listeners=n, **kw)


def test_clean_run_passes_and_serializes():
    summaries = [_ok(i) for i in range(10)]
    lateness = np.full(1000, 3.0)
    usage = ProcessUsage(pids=[1], names=["x"], cpu_percent=25.0, cpu_idle_percent=5.0,
                         rss_mb=110.0, rss_idle_mb=100.0)
    r = build_report(_config(10), summaries, lateness, window_s=10.0, server=usage,
                     generator_cpu_percent=12.0)
    assert r.passed and all(g.ok for g in r.goals)
    assert r.generator_nice == 10 and "nice=10" in format_report(r)
    assert (r.listeners_connected, r.listeners_failed, r.chunks_received) == (10, 0, 600)
    assert r.first_audio_ms.p50 == 12.0 and r.first_audio_ms.max == 17.0
    assert r.server_cpu_percent_per_listener == pytest.approx(2.5)
    assert r.server_cpu_marginal_percent_per_listener == pytest.approx(2.0)
    assert r.server_rss_marginal_kb_per_listener == pytest.approx(1024.0)
    again = json.loads(r.to_json())
    assert again["lateness_ms"]["p999"] == 3.0 and again["passed"] is True


def test_failures_underruns_and_gaps_fail_goals():
    summaries = [
        _ok(0, underruns=2),
        _ok(1, unannounced_gaps=1, missing_chunks=4, announced_skips=1),
        ListenerSummary(index=2, client_id="c2", failure="HTTP 403"),
        ListenerSummary(index=3, client_id="c3", failure="HTTP 403"),
    ]
    r = build_report(_config(5), summaries, np.full(10, 1.0), window_s=1.0)
    goals = {g.name: g for g in r.goals}
    assert r.listeners_failed == 3  # two refused, one never reported back
    assert r.failure_reasons == {"HTTP 403": 2}
    assert (r.underruns, r.listeners_with_underruns) == (2, 1)
    assert (r.unannounced_gaps, r.missing_chunks, r.announced_skips) == (1, 4, 1)
    assert not goals["listeners_failed_or_dropped"].ok
    assert not goals["underruns"].ok and not goals["unannounced_gaps"].ok
    assert goals["lateness_within_50ms"].ok and not r.passed


def test_lateness_goal_boundary_at_99_9_percent():
    summaries = [_ok(0)]
    just_ok = np.array([10.0] * 999 + [60.0])
    r = build_report(_config(1), summaries, just_ok, window_s=1.0)
    assert r.lateness_within_50ms == pytest.approx(0.999) and r.passed
    too_late = np.array([10.0] * 998 + [60.0, 50.001])
    r = build_report(_config(1), summaries, too_late, window_s=1.0)
    assert not r.passed and r.lateness_ms.max == 60.0
    assert build_report(_config(1), summaries, [], window_s=1.0).passed is False  # nothing measured


def test_first_audio_goal_uses_p99():
    summaries = [_ok(i, first_audio_ms=100.0) for i in range(99)] + [_ok(99, first_audio_ms=900.0)]
    r = build_report(_config(100), summaries, np.ones(10), window_s=1.0)
    assert r.first_audio_ms.p99 == 100.0 and r.passed  # one slow listener in 100 is the p100
    summaries[-2] = _ok(98, first_audio_ms=151.0)
    r = build_report(_config(100), summaries, np.ones(10), window_s=1.0, )
    assert r.first_audio_ms.p99 == 151.0 and not r.passed
    r = build_report(_config(100, goals=Goals(first_audio_p99_ms=200.0)), summaries, np.ones(10), window_s=1.0)
    assert r.passed


def test_cpu_ratio_and_side_by_side():
    usage_t = ProcessUsage(cpu_percent=60.0, cpu_idle_percent=20.0)
    usage_b = ProcessUsage(cpu_percent=10.0, cpu_idle_percent=0.0)
    t = build_report(_config(10, label="auralis"), [_ok(i) for i in range(10)], np.ones(5), window_s=1, server=usage_t)
    b = build_report(_config(10, label="baseline"), [_ok(i) for i in range(10)], np.ones(5), window_s=1, server=usage_b)
    assert cpu_ratio(t, b) == pytest.approx(6.0)
    assert cpu_ratio(t, b, marginal=True) == pytest.approx(4.0)
    text = format_side_by_side(t, b)
    assert "auralis" in text and "baseline" in text and "6.00x" in text


# -- process CPU arithmetic -------------------------------------------------------------------


def _p(pid, created, cpu):
    return ProcSample(pid=pid, create_time=created, name="p", cpu_s=cpu, rss=0)


def test_cpu_percent_between_counts_new_processes_and_ignores_unseen_old_ones():
    start = {s.key: s for s in [_p(1, 0.0, 10.0), _p(2, 0.0, 5.0)]}
    end = {s.key: s for s in [_p(1, 0.0, 11.0), _p(3, 105.0, 0.5), _p(4, 50.0, 99.0), _p(2, 103.0, 0.2)]}
    # pid 1: +1.0 s; pid 3 born in window: 0.5 s; pid 4 old but unseen at start: ignored;
    # pid 2 was reused by a new process born in the window: its 0.2 s counts
    assert cpu_percent_between(start, end, wall_s=10.0, start_time=100.0) == pytest.approx(17.0)
    with pytest.raises(ValueError):
        cpu_percent_between(start, end, wall_s=0, start_time=0)


# -- wire codec -------------------------------------------------------------------------------


def test_binary_frame_roundtrip_and_length_check():
    pcm = bytes(range(256)) * (CHUNK_BYTES // 256) + bytes(CHUNK_BYTES % 256)
    frame = encode_binary(42, 1234.5, pcm)
    assert decode_binary(frame) == AudioFrame(42, 1234.5)
    with pytest.raises(FrameError):
        decode_binary(frame[:-1])


def test_json_audio_roundtrip_and_validation():
    pcm_b64 = base64.b64encode(b"\x01" * CHUNK_BYTES).decode()
    msg = encode_audio_json(7, 99.5, pcm_b64, buffer_depth=0, tier="normal")
    assert decode_text(msg) == AudioFrame(7, 99.5)
    assert decode_text(msg.decode()) == AudioFrame(7, 99.5)
    short = encode_audio_json(7, 99.5, base64.b64encode(b"\x01" * 100).decode(), buffer_depth=0, tier="normal")
    for bad in (short, b"not json", b"[]", b'{"type": "audio", "chunk_id": 1}',
                b'{"type": "audio", "chunk_id": "1", "timestamp": 1, "data": ""}'):
        with pytest.raises(FrameError):
            decode_text(bad)
    not_base64 = encode_audio_json(7, 99.5, "*" * len(pcm_b64), buffer_depth=0, tier="normal")
    with pytest.raises(FrameError):
        decode_text(not_base64)
    assert decode_text(not_base64, verify_pcm=False) == AudioFrame(7, 99.5), "only the length is checked"
    with pytest.raises(FrameError):
        decode_text(short, verify_pcm=False)
    control = decode_text('{"type": "error", "error_code": "BUFFER_OVERRUN"}')
    assert isinstance(control, ControlMessage) and control.body["error_code"] == "BUFFER_OVERRUN"


def test_opus_frame_is_parsed_like_the_server_builds_it():
    from auralis_ray.stream.codecs.opus_frame import encode_opus_frame

    packets = [bytes([0xFC]) + bytes(300), bytes([0xFC]) + bytes(17), b"\x01" * 700]
    frame = encode_opus_frame(42, 1234.5, packets)
    assert decode_opus(frame) == AudioFrame(42, 1234.5)
    assert decode_opus(encode_opus_frame(7, 1.0, [])) == AudioFrame(7, 1.0)  # a chunk that completes no packet
    for bad in (frame[:-1], frame[:10], frame + b"\x00", frame + b"\x00\x00", frame + b"\x00\x05abc"):
        with pytest.raises(FrameError):
            decode_opus(bad)
    with pytest.raises(FrameError):
        decode_binary(frame)  # an opus frame is not a PCM frame


def test_http_report_judges_real_time_and_stalls_not_lateness():
    config = _config(4, format="http-mp3", seconds=10.0)
    steady = dict(window_audio_s=10.0, window_span_s=9.9, window_span_audio_s=9.9, window_bytes=160_000,
                  first_byte_ms=3.0)
    summaries = [_ok(i, **steady) for i in range(3)] + [_ok(3, window_audio_s=9.6, window_span_s=10.0,
                                                             window_span_audio_s=9.6, window_bytes=153_600,
                                                             stalls=1, longest_silence_ms=1200.0)]
    usage = ProcessUsage(cpu_percent=30.0, cpu_idle_percent=10.0)
    r = build_report(config, summaries, [], window_s=10.0, server=usage)
    goals = {g.name: g for g in r.goals}
    assert set(goals) == {"listeners_failed_or_dropped", "underruns", "stalls", "listeners_behind_real_time",
                          "first_audio_p99_ms"}
    assert r.stream_url == "http://h:1/listen/default.mp3"
    assert (r.stalls, r.listeners_with_stalls, r.longest_silence_ms) == (1, 1, 1200.0)
    assert r.listeners_behind_real_time == 1 and r.realtime_ratio_min == pytest.approx(0.96)
    assert r.bytes_per_s_per_listener.p50 == 16_000 and r.first_byte_ms.p50 == 3.0
    assert not goals["stalls"].ok and not goals["listeners_behind_real_time"].ok and not r.passed
    # 20 % of a core above idle for 4 listeners receiving 3.96 s of audio a second: 39.6 units of 100 ms
    assert r.server_cpu_marginal_us_per_listener_per_100ms == pytest.approx(0.2 * 1e6 / 39.6)
    text = format_report(r)
    assert "GET http://h:1/listen/default.mp3" in text and "stalls (listeners), longest silence ms" in text
    assert "lateness" not in text
    ok = build_report(config, [_ok(i, **steady) for i in range(4)], [], window_s=10.0)
    assert ok.passed and ok.listeners_behind_real_time == 0 and ok.realtime_ratio_p50 == 1.0


def test_marginal_cpu_per_listener_per_100ms_and_its_goal():
    # 1,000 listeners in real time at 10.4 % of a core above idle: Icecast's 10.4 µs
    assert marginal_us_per_listener_per_100ms(12.4, 2.0, 1000.0) == pytest.approx(10.4)
    assert marginal_us_per_listener_per_100ms(None, 2.0, 1000.0) is None
    assert marginal_us_per_listener_per_100ms(12.4, 2.0, 0.0) is None
    summaries = [_ok(i, window_audio_s=1.0) for i in range(10)]  # 10 listeners: 100 units of 100 ms a second
    usage = ProcessUsage(cpu_percent=10.1, cpu_idle_percent=10.0)  # 1,000 µs of CPU a second
    for limit, ok in ((10.0, True), (9.9, False)):
        r = build_report(_config(10, seconds=1.0, goals=Goals(max_server_us_per_listener_per_100ms=limit)),
                         summaries, np.ones(10), window_s=1.0, server=usage)
        assert r.server_cpu_marginal_us_per_listener_per_100ms == pytest.approx(10.0)
        assert {g.name: g.ok for g in r.goals}["server_us_per_listener_per_100ms"] is ok


def test_config_validates_and_builds_uri():
    c = LoadTestConfig(url="ws://127.0.0.1:8000/", station="a b", format="json", tier="stable")
    assert c.listener_uri("x1") == "ws://127.0.0.1:8000/ws/audio/x1?station=a%20b&format=json&buffer_tier=stable"
    assert not c.is_http
    http = LoadTestConfig(url="ws://127.0.0.1:8000", station="night", format="http-opus")
    assert http.is_http and http.stream_url() == "http://127.0.0.1:8000/listen/night.opus"
    secure = LoadTestConfig(url="https://radio.example", format="opus")
    assert secure.listener_uri("a").startswith("wss://radio.example/ws/audio/a?")
    secure_stream = LoadTestConfig(url="wss://r.example:9", format="http-mp3").stream_url()
    assert secure_stream == "https://r.example:9/listen/default.mp3"
    for bad in (dict(url="ftp://x"), dict(format="xml"), dict(tier="huge"), dict(listeners=0),
                dict(listeners=2, procs=3), dict(server_patterns=("(",)), dict(nice=-1), dict(nice=20),
                dict(stall_s=0), dict(realtime_tolerance_s=-1)):
        with pytest.raises((ValueError, Exception)):
            LoadTestConfig(**bad)


def test_late_ticks_tell_one_bad_tick_from_steady_overload():
    # 3 ticks x 4 listeners; tick 11 is late for 3 of 4, tick 12 for 1 of 4
    ids = np.array([10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12])
    lateness = np.array([5, 6, 7, 8, 60, 70, 80, 9, 5, 5, 5, 51.0])
    seen, late, worst = late_ticks(lateness, ids, 50.0)
    assert (seen, late) == (3, 2)
    assert [(w.chunk_id, w.listeners, w.late_fraction, w.max_ms) for w in worst] == [(11, 4, 0.75, 80.0),
                                                                                    (12, 4, 0.25, 51.0)]
    r = build_report(_config(4), [_ok(i) for i in range(4)], lateness, window_s=1.0, window_chunk_ids=ids)
    assert (r.ticks_in_window, r.ticks_with_late_chunks, r.worst_ticks[0].chunk_id) == (3, 2, 11)
    assert "2 of 3; 11 75% 80 ms" in format_report(r)
    assert late_ticks(lateness, ids[:3], 50.0) == (0, 0, [])  # mismatched inputs: nothing claimed


def test_listener_processes_yield_priority_and_never_raise_it():
    import subprocess
    import sys

    code = "from auralis_ray.monitor.priority import lower_priority; print(lower_priority({}))"
    lowered = subprocess.run([sys.executable, "-c", code.format(7)], capture_output=True, text=True, check=True)
    assert int(lowered.stdout) == max(7, os.getpriority(os.PRIO_PROCESS, 0))
    kept = subprocess.run(["nice", "-n", "12", sys.executable, "-c", code.format(3)], capture_output=True,
                          text=True, check=True)
    assert int(kept.stdout) >= 12  # already lower: left as it is


def _autogroup_niceness() -> int | None:
    """This process's scheduling group's niceness; None without autogroups."""
    try:
        with open("/proc/self/autogroup") as f:
            return int(f.read().split()[-1])  # "/autogroup-123 nice 7"
    except OSError:
        return None


@pytest.mark.parametrize("group_leader", [False, True])
def test_listener_processes_yield_to_other_sessions_without_touching_the_callers(group_leader):
    """A listener process starts a session of its own whose scheduling group yields; one that leads a
    process group cannot, and leaves its session's group (the caller's) as it found it."""
    import subprocess
    import sys

    code = ("import os; from auralis_ray.monitor.priority import yield_to_other_sessions\n"
            "sid = os.getsid(0); n = yield_to_other_sessions(7)\n"
            "path = '/proc/self/autogroup'\n"
            "group = open(path).read().split()[-1] if os.path.exists(path) else -1\n"
            "print(n, int(os.getsid(0) == os.getpid()), int(os.getsid(0) != sid), group)")
    ours = _autogroup_niceness()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         process_group=0 if group_leader else None).stdout.split()
    niceness, leads_session, moved = map(int, out[:3])
    assert niceness == max(7, os.getpriority(os.PRIO_PROCESS, 0))
    assert (leads_session, moved) == ((0, 0) if group_leader else (1, 1))
    if ours is not None:  # a kernel with autogroups
        assert int(out[3]) == (ours if group_leader else 7)
        assert _autogroup_niceness() == ours  # the caller's group is unchanged either way
