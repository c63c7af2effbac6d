"""The load report: one JSON-serializable dataclass, built by merging listener summaries.

`build_report` is pure: it takes the listeners' summaries, the window lateness values
and the measured process usage, and computes every figure and the pass/fail verdict.
WebSocket listeners are judged by their chunks' lateness and gaps; HTTP stream listeners, whose
bytes carry no chunk ids or publish times, by whether they hold real time and never stall.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from auralis_ray.tools.loadtest.config import Goals, LoadTestConfig
from auralis_ray.tools.loadtest.frames import CHUNK_S, HTTP_FORMATS
from auralis_ray.tools.loadtest.session import ListenerSummary
from auralis_ray.tools.loadtest.stats import Percentiles, fraction_within, percentile, summarize

MB = 1024.0 * 1024.0


@dataclass
class ProcessUsage:
    """psutil figures of a process set; CPU% with 100 = one core."""

    pids: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    cpu_percent: float | None = None  # steady-state window
    cpu_idle_percent: float | None = None  # before the ramp, no listener connected
    rss_mb: float | None = None  # mean total over the steady-state window
    rss_max_mb: float | None = None
    rss_idle_mb: float | None = None
    # window minus idle CPU % per process name: where the listeners' cost lands (and how much of the
    # whole system's marginal is background noise in processes listeners do not touch)
    cpu_marginal_by_name: dict[str, float] = field(default_factory=dict)


@dataclass
class GoalResult:
    """One goal of the run: its target, the measured value, and whether it was met."""

    name: str
    target: str
    value: float | int | None
    ok: bool


@dataclass
class LateChunk:
    """One chunk id (one tick of the broadcast) and how its listeners received it."""

    chunk_id: int
    listeners: int
    late_fraction: float  # of its arrivals, later than the goal's limit
    max_ms: float


@dataclass
class LoadReport:
    """The result of one load test run, as printed and as written to JSON."""

    label: str
    url: str
    format: str  # json, binary, opus (WebSocket), http-mp3 or http-opus (HTTP stream)
    stream_url: str | None  # what an HTTP stream listener GETs (None for WebSocket formats)
    station: str
    tier: str
    procs: int
    generator_nice: int
    ramp_s: float
    window_s: float
    listeners_requested: int
    listeners_connected: int
    listeners_failed: int
    listeners_closed_early: int
    failure_reasons: dict[str, int]
    close_codes: dict[str, int]
    error_codes: dict[str, int]
    chunks_received: int
    live_chunks_in_window: int
    bad_frames: int
    lateness_ms: Percentiles
    lateness_within_50ms: float | None
    lateness_within_20ms: float | None
    # the same chunks by when the load generator read them: adds the generator's own queueing
    read_lateness_ms: Percentiles
    read_lateness_within_50ms: float | None
    # are late chunks spread over every tick (steady overload) or a few bad ticks (a disturbance)?
    ticks_in_window: int
    ticks_with_late_chunks: int
    worst_ticks: list[LateChunk]
    request_sent_ms: Percentiles  # handshake start → request written: the connect and the generator's delay
    established_ms: Percentiles
    first_audio_ms: Percentiles
    first_audio_read_ms: Percentiles  # by when the generator read it
    unannounced_gaps: int
    missing_chunks: int
    announced_skips: int
    skipped_chunks: int
    out_of_order: int
    underruns: int
    listeners_with_underruns: int
    # what each listener received in the window: audio bytes (whole frames, or the HTTP body) per
    # second; seconds of audio per second between its first and last arrival in the window (1.0 is
    # real time); behind real time: less audio than that time, by more than the run's tolerance
    bytes_per_s_per_listener: Percentiles
    realtime_ratio_min: float | None
    realtime_ratio_p50: float | None
    listeners_behind_real_time: int
    stalls: int  # silences longer than the run's stall_s once audio flowed
    listeners_with_stalls: int
    longest_silence_ms: float | None
    first_byte_ms: Percentiles  # HTTP: handshake start → first byte of the body
    server: ProcessUsage
    server_cpu_percent_per_listener: float | None  # total CPU% / connected listeners
    server_cpu_marginal_percent_per_listener: float | None  # (total − idle) / listeners
    server_rss_kb_per_listener: float | None  # total RSS / connected listeners
    server_rss_marginal_kb_per_listener: float | None  # (RSS − idle RSS) / listeners
    # µs of server CPU (window minus idle) per listener per 100 ms of audio it received
    server_cpu_marginal_us_per_listener_per_100ms: float | None
    generator_cpu_percent: float | None
    goals: list[GoalResult]
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _per_listener(value: float | None, listeners: int, scale: float = 1.0) -> float | None:
    if value is None or listeners == 0:
        return None
    return value * scale / listeners


def evaluate_goals(report: LoadReport, goals: Goals, lateness_ms: np.ndarray) -> list[GoalResult]:
    first_p99 = report.first_audio_ms.p99
    lost = report.listeners_failed + report.listeners_closed_early
    results = [
        GoalResult("listeners_failed_or_dropped", f"<= {goals.max_failed_listeners}", lost,
                   lost <= goals.max_failed_listeners),
        GoalResult("underruns", f"<= {goals.max_underruns}", report.underruns,
                   report.underruns <= goals.max_underruns),
    ]
    if report.format in HTTP_FORMATS:
        results += [
            GoalResult("stalls", f"<= {goals.max_stalls}", report.stalls, report.stalls <= goals.max_stalls),
            GoalResult("listeners_behind_real_time", f"<= {goals.max_listeners_behind_real_time}",
                       report.listeners_behind_real_time,
                       report.listeners_behind_real_time <= goals.max_listeners_behind_real_time),
        ]
    else:
        within = fraction_within(lateness_ms, goals.lateness_limit_ms)
        gaps = report.unannounced_gaps + report.out_of_order
        results += [
            GoalResult("unannounced_gaps", f"<= {goals.max_unannounced_gaps}", gaps,
                       gaps <= goals.max_unannounced_gaps),
            GoalResult(f"lateness_within_{goals.lateness_limit_ms:g}ms",
                       f">= {goals.min_fraction_within_limit:.1%}", within,
                       within is not None and within >= goals.min_fraction_within_limit),
        ]
    results.append(GoalResult("first_audio_p99_ms", f"<= {goals.first_audio_p99_ms:g}", first_p99,
                              first_p99 is not None and first_p99 <= goals.first_audio_p99_ms))
    limit = goals.max_server_us_per_listener_per_100ms
    if limit is not None:
        cost = report.server_cpu_marginal_us_per_listener_per_100ms
        results.append(GoalResult("server_us_per_listener_per_100ms", f"<= {limit:g}", cost,
                                  cost is not None and cost <= limit))
    return results


def marginal_us_per_listener_per_100ms(cpu_percent: float | None, idle_percent: float | None,
                                       audio_s_per_s: float) -> float | None:
    """µs of server CPU per listener per 100 ms of audio: the window's CPU above idle (100 % = one
    core) over the audio every listener together received per second, in 100 ms units."""
    if cpu_percent is None or idle_percent is None or audio_s_per_s <= 0:
        return None
    return (cpu_percent - idle_percent) / 100.0 * 1e6 / (audio_s_per_s / CHUNK_S)


def late_ticks(lateness_ms: np.ndarray, chunk_ids: np.ndarray, limit_ms: float,
               worst: int = 5) -> tuple[int, int, list[LateChunk]]:
    """(ticks seen, ticks with any arrival later than `limit_ms`, the `worst` of them by late share)."""
    if chunk_ids.size == 0 or chunk_ids.size != lateness_ms.size:
        return 0, 0, []
    ids, index = np.unique(chunk_ids, return_inverse=True)
    arrivals = np.bincount(index, minlength=ids.size)
    late = np.bincount(index, weights=lateness_ms > limit_ms, minlength=ids.size)
    peak = np.full(ids.size, -np.inf)
    np.maximum.at(peak, index, lateness_ms)
    order = np.lexsort((-peak, -late / arrivals))
    chosen = [i for i in order[:worst] if late[i] > 0]
    return int(ids.size), int(np.count_nonzero(late)), [
        LateChunk(int(ids[i]), int(arrivals[i]), float(late[i] / arrivals[i]), float(peak[i])) for i in chosen
    ]


def build_report(
    config: LoadTestConfig,
    summaries: Sequence[ListenerSummary],
    window_lateness_ms: Iterable[float] | np.ndarray,
    *,
    window_s: float,
    server: ProcessUsage | None = None,
    generator_cpu_percent: float | None = None,
    read_lateness_ms: Iterable[float] | np.ndarray | None = None,
    window_chunk_ids: Sequence[int] | np.ndarray | None = None,
) -> LoadReport:
    lateness = np.asarray(
        window_lateness_ms if isinstance(window_lateness_ms, np.ndarray) else list(window_lateness_ms),
        dtype=np.float64,
    )
    read_lateness = lateness if read_lateness_ms is None else np.asarray(
        read_lateness_ms if isinstance(read_lateness_ms, np.ndarray) else list(read_lateness_ms),
        dtype=np.float64,
    )
    ticks, late_count, worst = late_ticks(
        lateness, np.asarray(window_chunk_ids if window_chunk_ids is not None else [], dtype=np.int64),
        config.goals.lateness_limit_ms)
    server = server or ProcessUsage()
    connected = [s for s in summaries if s.connected]
    n = len(connected)
    failures = Counter(s.failure for s in summaries if not s.connected)
    close_codes = Counter(str(s.close_code) for s in summaries if s.closed_early)
    errors: Counter[str] = Counter()
    for s in summaries:
        errors.update(s.error_codes)

    cpu, idle = server.cpu_percent, server.cpu_idle_percent
    rss, rss_idle = server.rss_mb, server.rss_idle_mb
    # each listener's bytes and audio seconds arrived in the planned window of config.seconds
    bytes_per_s = [s.window_bytes / config.seconds for s in connected]
    # the rate each kept between its first and last arrival in the window: a window's edges fall
    # anywhere between two writes, so the audio inside it is up to one write short or over
    realtime = np.sort([s.window_span_audio_s / s.window_span_s if s.window_span_s > 0 else 0.0 for s in connected])
    behind = sum(1 for s in connected
                 if s.window_span_s <= 0 or s.window_span_audio_s < s.window_span_s - config.realtime_tolerance_s)
    report = LoadReport(
        label=config.label,
        url=config.url,
        format=config.format,
        stream_url=config.stream_url() if config.is_http else None,
        station=config.station,
        tier=config.tier,
        procs=config.procs,
        generator_nice=config.nice,
        ramp_s=config.ramp_s,
        window_s=window_s,
        listeners_requested=config.listeners,
        listeners_connected=n,
        listeners_failed=len(summaries) - n + max(0, config.listeners - len(summaries)),
        listeners_closed_early=sum(1 for s in connected if s.closed_early),
        failure_reasons=dict(failures),
        close_codes=dict(close_codes),
        error_codes=dict(errors),
        chunks_received=sum(s.chunks for s in summaries),
        live_chunks_in_window=int(lateness.size),
        bad_frames=sum(s.bad_frames for s in summaries),
        lateness_ms=summarize(lateness),
        lateness_within_50ms=fraction_within(lateness, 50.0),
        lateness_within_20ms=fraction_within(lateness, 20.0),
        read_lateness_ms=summarize(read_lateness),
        read_lateness_within_50ms=fraction_within(read_lateness, 50.0),
        ticks_in_window=ticks,
        ticks_with_late_chunks=late_count,
        worst_ticks=worst,
        request_sent_ms=summarize([s.request_sent_ms for s in connected if s.request_sent_ms is not None]),
        established_ms=summarize([s.established_ms for s in connected if s.established_ms is not None]),
        first_audio_ms=summarize([s.first_audio_ms for s in connected if s.first_audio_ms is not None]),
        first_audio_read_ms=summarize(
            [s.first_audio_read_ms for s in connected if s.first_audio_read_ms is not None]),
        unannounced_gaps=sum(s.unannounced_gaps for s in summaries),
        missing_chunks=sum(s.missing_chunks for s in summaries),
        announced_skips=sum(s.announced_skips for s in summaries),
        skipped_chunks=sum(s.skipped_chunks for s in summaries),
        out_of_order=sum(s.out_of_order for s in summaries),
        underruns=sum(s.underruns for s in summaries),
        listeners_with_underruns=sum(1 for s in summaries if s.underruns),
        bytes_per_s_per_listener=summarize(bytes_per_s),
        realtime_ratio_min=float(realtime[0]) if realtime.size else None,
        realtime_ratio_p50=percentile(realtime, 50) if realtime.size else None,
        listeners_behind_real_time=behind,
        stalls=sum(s.stalls for s in summaries),
        listeners_with_stalls=sum(1 for s in summaries if s.stalls),
        longest_silence_ms=max((s.longest_silence_ms for s in connected), default=None),
        first_byte_ms=summarize([s.first_byte_ms for s in connected if s.first_byte_ms is not None]),
        server=server,
        server_cpu_percent_per_listener=_per_listener(cpu, n),
        server_cpu_marginal_percent_per_listener=(
            _per_listener(cpu - idle, n) if cpu is not None and idle is not None else None
        ),
        server_rss_kb_per_listener=_per_listener(rss, n, 1024.0),
        server_rss_marginal_kb_per_listener=(
            _per_listener(rss - rss_idle, n, 1024.0) if rss is not None and rss_idle is not None else None
        ),
        server_cpu_marginal_us_per_listener_per_100ms=marginal_us_per_listener_per_100ms(
            cpu, idle, sum(s.window_audio_s for s in connected) / config.seconds),
        generator_cpu_percent=generator_cpu_percent,
        goals=[],
        passed=False,
    )
    report.goals = evaluate_goals(report, config.goals, lateness)
    report.passed = all(g.ok for g in report.goals)
    return report


# -- text -------------------------------------------------------------------------------

def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3%}"


def _chunk_rows(r: LoadReport) -> list[tuple[str, str]]:
    """A WebSocket run's chunks: lateness, ticks, gaps."""
    lat = r.lateness_ms
    return [
        ("chunks received", _fmt(r.chunks_received)),
        ("live chunks in window", _fmt(r.live_chunks_in_window)),
        ("lateness p50/p95/p99 ms", f"{_fmt(lat.p50)}/{_fmt(lat.p95)}/{_fmt(lat.p99)}"),
        ("lateness p99.9/max ms", f"{_fmt(lat.p999)}/{_fmt(lat.max)}"),
        ("within 50 ms / 20 ms", f"{_pct(r.lateness_within_50ms)} / {_pct(r.lateness_within_20ms)}"),
        ("read by generator: p99 ms, within 50 ms",
         f"{_fmt(r.read_lateness_ms.p99)}, {_pct(r.read_lateness_within_50ms)}"),
        ("ticks with late chunks (worst: id late% max)",
         f"{r.ticks_with_late_chunks} of {r.ticks_in_window}"
         + "".join(f"; {w.chunk_id} {w.late_fraction:.0%} {w.max_ms:.0f} ms" for w in r.worst_ticks[:3])),
        ("established p50/p99 ms", f"{_fmt(r.established_ms.p50)}/{_fmt(r.established_ms.p99)}"),
    ]


def _stream_rows(r: LoadReport) -> list[tuple[str, str]]:
    """An HTTP stream run's timing: the response, the first byte, real time and silences."""
    return [
        ("audio received, 100 ms units", _fmt(r.chunks_received)),
        ("response head p50/p99 ms", f"{_fmt(r.established_ms.p50)}/{_fmt(r.established_ms.p99)}"),
        ("first byte p50/p99/max ms", f"{_fmt(r.first_byte_ms.p50)}/{_fmt(r.first_byte_ms.p99)}/"
                                      f"{_fmt(r.first_byte_ms.max)}"),
        ("audio s per s in window min/p50", f"{_fmt(r.realtime_ratio_min, 3)}/{_fmt(r.realtime_ratio_p50, 3)}"),
        ("listeners behind real time", _fmt(r.listeners_behind_real_time)),
        ("stalls (listeners), longest silence ms",
         f"{r.stalls} ({r.listeners_with_stalls}), {_fmt(r.longest_silence_ms)}"),
    ]


def _rows(r: LoadReport) -> list[tuple[str, str]]:
    fa, rate = r.first_audio_ms, r.bytes_per_s_per_listener
    http = r.format in HTTP_FORMATS
    return [
        ("listeners requested/connected/failed",
         f"{r.listeners_requested}/{r.listeners_connected}/{r.listeners_failed}"),
        ("failure reasons", ", ".join(f"{k}: {v}" for k, v in r.failure_reasons.items()) or "-"),
        ("closed early (close codes)", f"{r.listeners_closed_early} ({', '.join(r.close_codes) or '-'})"),
        *(_stream_rows(r) if http else _chunk_rows(r)),
        ("first audio p50/p99/max ms", f"{_fmt(fa.p50)}/{_fmt(fa.p99)}/{_fmt(fa.max)}"),
        ("first audio read by generator: p99 ms", _fmt(r.first_audio_read_ms.p99)),
        ("request sent (connect + generator) p50/p99 ms",
         f"{_fmt(r.request_sent_ms.p50)}/{_fmt(r.request_sent_ms.p99)}"),
        *([] if http else [
            ("unannounced gaps (missing chunks)", f"{r.unannounced_gaps} ({r.missing_chunks})"),
            ("announced skips / out of order", f"{r.announced_skips} / {r.out_of_order}"),
        ]),
        ("underruns (listeners)", f"{r.underruns} ({r.listeners_with_underruns})"),
        ("bad frames", _fmt(r.bad_frames)),
        ("audio bytes/s per listener p50/max", f"{_fmt(rate.p50, 0)}/{_fmt(rate.max, 0)}"),
        ("server processes", _fmt(len(r.server.pids))),
        ("server CPU % (idle)", f"{_fmt(r.server.cpu_percent)} ({_fmt(r.server.cpu_idle_percent)})"),
        ("server CPU % per listener", _fmt(r.server_cpu_percent_per_listener, 4)),
        ("  CPU marginal (minus idle)", _fmt(r.server_cpu_marginal_percent_per_listener, 4)),
        ("  marginal µs per listener per 100 ms", _fmt(r.server_cpu_marginal_us_per_listener_per_100ms, 2)),
        ("  marginal CPU % by process (top 4)", ", ".join(
            f"{name} {value:+.1f}" for name, value in sorted(
                r.server.cpu_marginal_by_name.items(), key=lambda item: -abs(item[1]))[:4]) or "-"),
        ("server RSS MB (idle)", f"{_fmt(r.server.rss_mb)} ({_fmt(r.server.rss_idle_mb)})"),
        ("server RSS KB per listener", _fmt(r.server_rss_kb_per_listener)),
        ("  RSS marginal (minus idle)", _fmt(r.server_rss_marginal_kb_per_listener)),
        ("generator CPU %", _fmt(r.generator_cpu_percent)),
        *[(f"goal {g.name} {g.target}", f"{_fmt(g.value, 4)} {'PASS' if g.ok else 'FAIL'}") for g in r.goals],
        ("verdict", "PASS" if r.passed else "FAIL"),
    ]


def format_report(r: LoadReport) -> str:
    listening = f"GET {r.stream_url}" if r.stream_url else f"station={r.station} tier={r.tier}"
    head = (f"{r.label}: {r.url} format={r.format} {listening} "
            f"procs={r.procs} nice={r.generator_nice} ramp={r.ramp_s:.1f}s window={r.window_s:.1f}s")
    rows = _rows(r)
    width = max(len(k) for k, _ in rows)
    return "\n".join([head, *(f"  {k:<{width}}  {v}" for k, v in rows)])


def cpu_ratio(target: LoadReport, baseline: LoadReport, *, marginal: bool = False) -> float | None:
    """How many times more server CPU per listener the target spends than the baseline."""
    if marginal:
        t, b = target.server_cpu_marginal_percent_per_listener, baseline.server_cpu_marginal_percent_per_listener
    else:
        t, b = target.server_cpu_percent_per_listener, baseline.server_cpu_percent_per_listener
    if t is None or b is None or b <= 0:
        return None
    return t / b


def format_side_by_side(target: LoadReport, baseline: LoadReport) -> str:
    left, right = _rows(target), _rows(baseline)
    width = max(len(k) for k, _ in left + right)
    col = max(len(v) for _, v in left + [("", target.label)]) + 2
    lines = [f"  {'':<{width}}  {target.label:<{col}}{baseline.label}"]
    right_map = dict(right)
    for key, value in left:
        other = right_map.get(key, "-")
        lines.append(f"  {key:<{width}}  {value:<{col}}{other}")
    ratio, marginal = cpu_ratio(target, baseline), cpu_ratio(target, baseline, marginal=True)
    lines.append(f"  {'CPU per listener ratio':<{width}}  {_fmt(ratio, 2)}x "
                 f"(marginal: {_fmt(marginal, 2)}x) {target.label} / {baseline.label}")
    return "\n".join(lines)
