"""The load generator: N listeners over `websockets`, ramped, optionally over P processes.

This module is the I/O edge. Each listener is an asyncio task that decodes messages
(`frames`) and feeds them, with their arrival time (when the message's last bytes were read from the
socket: `StampedConnection`), to its pure `ListenerSession`.
The parent process measures the server (and itself) with psutil over the steady-state
window and merges everything into a `LoadReport`.

Timeline of a run (all wall-clock, `time.time()`, the clock the server stamps chunks with):

    idle_s            server measured with no listener (after the workers started)
    t0                listener i opens at t0 + i / ramp_rate
    ramp end+settle   window_start: steady-state window begins
    + seconds         window_end: every listener is closed, players stop

Lateness is reported for live chunks that arrived inside the window; first audio,
gaps, skips and underruns cover the whole run.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import DATA_OPCODES, Frame

from auralis_ray.loadtest.config import LoadTestConfig
from auralis_ray.loadtest.frames import CHUNK_S, AudioFrame, FrameError, decode_binary, decode_text
from auralis_ray.loadtest.procmon import ProcessSet, Snapshot, cpu_percent_between, self_and_workers, total_rss
from auralis_ray.loadtest.report import MB, LoadReport, ProcessUsage, build_report
from auralis_ray.loadtest.session import ListenerSession, ListenerSummary

START_MARGIN_S = 0.2  # between deciding t0 and the first connection
RSS_SAMPLE_S = 1.0
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Schedule:
    t0: float
    window_start: float
    window_end: float

    @classmethod
    def plan(cls, config: LoadTestConfig, t0: float) -> Schedule:
        window_start = t0 + config.ramp_s + config.settle_s
        return cls(t0, window_start, window_start + config.seconds)

    def opens_at(self, index: int, ramp_rate: float) -> float:
        return self.t0 + index / ramp_rate


@dataclass
class WorkerResult:
    summaries: list[ListenerSummary]
    lateness_ms: np.ndarray  # live chunks in the window, all listeners of the worker


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.new_event_loop()


def run_async(coro: Any) -> Any:
    """Run a coroutine on uvloop when it is installed (leaner per message)."""
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(coro)


async def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "handshake timeout"
    if isinstance(exc, InvalidHandshake):
        return f"handshake: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"connect: {exc.strerror or type(exc).__name__}"
    return type(exc).__name__


def _handle(session: ListenerSession, message: str | bytes, now: float) -> None:
    try:
        event = decode_binary(message) if isinstance(message, bytes) else decode_text(message)
    except FrameError:
        session.on_bad_frame()
        return
    if isinstance(event, AudioFrame):
        session.on_audio(event.chunk_id, event.timestamp, now)
    elif event.type == "connection_established":
        session.on_established(event.body.get("server_time"), now)
    elif event.type == "error":
        session.on_error(str(event.body.get("error_code")))


class StampedConnection(ClientConnection):
    """A client connection that stamps each complete data message with the time its last bytes were
    read from the socket, so lateness measures the server and the network, not how long this load
    generator's own event loop took to get round to the listener's task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: deque[float] = deque()
        self._read_at = 0.0

    def data_received(self, data: bytes) -> None:
        self._read_at = time.time()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES and event.fin:
            self.arrivals.append(self._read_at)
        super().process_event(event)


async def _listen(
    config: LoadTestConfig, session: ListenerSession, opens_at: float, open_conns: set[ClientConnection]
) -> None:
    await _sleep_until(opens_at)
    session.on_handshake_start(time.time())
    try:
        ws = await connect(
            config.listener_uri(session.client_id),
            compression="deflate" if config.deflate else None,
            open_timeout=config.connect_timeout_s,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=2**20,
            proxy=None,
            create_connection=StampedConnection,
        )
    except Exception as exc:  # noqa: BLE001 - every failure is a counted outcome
        session.on_failed(_failure_reason(exc))
        return
    open_conns.add(ws)
    try:
        arrivals = ws.arrivals
        async for message in ws:
            _handle(session, message, arrivals.popleft() if arrivals else time.time())
    except ConnectionClosed:
        pass
    except Exception as exc:  # noqa: BLE001 - a client-side fault ends this listener only
        session.on_failed(f"client error: {type(exc).__name__}: {exc}")
    finally:
        open_conns.discard(ws)
        code = ws.close_code
        if session.established_at is None and session.failure is None:
            session.on_failed(f"closed {code} before connection_established")
        session.on_closed(code, time.time())


async def run_listeners(
    config: LoadTestConfig, indices: list[int], schedule: Schedule, run_id: str
) -> WorkerResult:
    """Open the given listeners on schedule, record until window_end, close them."""
    sessions = [
        ListenerSession(
            i, f"lt{run_id}-{i}", window=(schedule.window_start, schedule.window_end),
            prebuffer_chunks=config.prebuffer_chunks, chunk_s=CHUNK_S,
        )
        for i in indices
    ]
    open_conns: set[ClientConnection] = set()
    tasks = [
        asyncio.create_task(_listen(config, s, schedule.opens_at(s.index, config.ramp_rate), open_conns))
        for s in sessions
    ]
    await _sleep_until(schedule.window_end)
    end = time.time()
    for s in sessions:
        s.finish(end)
    if open_conns:
        await asyncio.wait(
            [asyncio.create_task(ws.close()) for ws in list(open_conns)], timeout=CLOSE_TIMEOUT_S + 1
        )
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lateness = [v for s in sessions for v in s.window_lateness_ms()]
    return WorkerResult([s.summary() for s in sessions], np.asarray(lateness, dtype=np.float64))


# -- worker processes -----------------------------------------------------------------

def _worker_main(config: LoadTestConfig, indices: list[int], run_id: str, conn: Any) -> None:
    conn.send(("ready", os.getpid()))
    schedule = conn.recv()
    if schedule is None:
        return
    result = run_async(run_listeners(config, indices, schedule, run_id))
    conn.send(("result", result))
    conn.close()


class _Workers:
    def __init__(self, config: LoadTestConfig, run_id: str) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        for w in range(config.procs):
            indices = list(range(w, config.listeners, config.procs))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(config, indices, run_id, child), daemon=True)
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self.pids: list[int] = []

    def wait_ready(self) -> None:
        for conn in self.conns:
            kind, pid = conn.recv()
            assert kind == "ready"
            self.pids.append(pid)

    def start(self, schedule: Schedule) -> None:
        for conn in self.conns:
            conn.send(schedule)

    def results(self) -> list[WorkerResult]:
        out = []
        for conn in self.conns:
            kind, result = conn.recv()
            assert kind == "result"
            out.append(result)
        return out

    def stop(self) -> None:
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


# -- the parent: schedule, measure, merge -------------------------------------------

def server_process_set(config: LoadTestConfig) -> ProcessSet:
    if config.server_pids:
        return ProcessSet(pids=config.server_pids)
    return ProcessSet(patterns=config.server_patterns)


def _usage_names(snapshot: Snapshot) -> tuple[list[int], list[str]]:
    samples = sorted(snapshot.values(), key=lambda s: s.pid)
    return [s.pid for s in samples], [s.name for s in samples]


async def _measure_window(
    server: ProcessSet, generator: ProcessSet, schedule: Schedule
) -> tuple[float, float, float | None, float | None, list[int], Snapshot]:
    """CPU% of server and generator and RSS samples over [window_start, window_end]."""
    await _sleep_until(schedule.window_start)
    t_start = time.time()
    s0, g0 = await asyncio.to_thread(lambda: (server.snapshot(), generator.snapshot()))
    rss_samples = [total_rss(s0)]
    while time.time() + RSS_SAMPLE_S < schedule.window_end:
        await asyncio.sleep(RSS_SAMPLE_S)
        rss_samples.append(total_rss(await asyncio.to_thread(server.snapshot)))
    await _sleep_until(schedule.window_end)
    t_end = time.time()
    s1, g1 = await asyncio.to_thread(lambda: (server.snapshot(), generator.snapshot()))
    rss_samples.append(total_rss(s1))
    wall = t_end - t_start
    server_cpu = cpu_percent_between(s0, s1, wall, t_start) if s1 else None
    gen_cpu = cpu_percent_between(g0, g1, wall, t_start)
    return wall, gen_cpu, server_cpu, float(np.mean(rss_samples)) if s1 else None, rss_samples, s1


def run_loadtest(config: LoadTestConfig) -> LoadReport:
    """Run one load test to completion and return its report (blocking)."""
    return run_async(run_loadtest_async(config))


async def run_loadtest_async(config: LoadTestConfig) -> LoadReport:
    """The same as `run_loadtest`, inside a running event loop."""
    run_id = secrets.token_hex(4)
    server = server_process_set(config)
    workers = _Workers(config, run_id) if config.procs > 1 else None
    try:
        # 1. idle: the server with no listener, once the workers have started (their start-up would
        # compete with the server for the cores and blur the idle figure)
        if workers is not None:
            await asyncio.to_thread(workers.wait_ready)
        t_idle = time.time()
        idle0 = await asyncio.to_thread(server.snapshot)
        await _sleep_until(t_idle + config.idle_s)
        idle1 = await asyncio.to_thread(server.snapshot)
        idle_wall = time.time() - t_idle
        idle_cpu = cpu_percent_between(idle0, idle1, idle_wall, t_idle) if idle1 and config.idle_s > 0 else None
        idle_rss = total_rss(idle1) / MB if idle1 else None

        # 2. ramp and steady-state window
        schedule = Schedule.plan(config, time.time() + START_MARGIN_S)
        generator = self_and_workers(workers.pids if workers else ())
        measure = asyncio.create_task(_measure_window(server, generator, schedule))
        if workers is not None:
            workers.start(schedule)
            local: WorkerResult | None = None
        else:
            local = await run_listeners(config, list(range(config.listeners)), schedule, run_id)
        wall, gen_cpu, server_cpu, rss_mean, rss_samples, last = await measure
        results = [local] if local is not None else await asyncio.to_thread(workers.results)
    finally:
        if workers is not None:
            workers.stop()

    pids, names = _usage_names(last)
    usage = ProcessUsage(
        pids=pids,
        names=names,
        cpu_percent=server_cpu,
        cpu_idle_percent=idle_cpu,
        rss_mb=None if rss_mean is None else rss_mean / MB,
        rss_max_mb=max(rss_samples) / MB if last else None,
        rss_idle_mb=idle_rss,
    )
    summaries = sorted((s for r in results for s in r.summaries), key=lambda s: s.index)
    lateness = np.concatenate([r.lateness_ms for r in results]) if results else np.empty(0)
    return build_report(
        config, summaries, lateness, window_s=wall, server=usage, generator_cpu_percent=gen_cpu
    )
