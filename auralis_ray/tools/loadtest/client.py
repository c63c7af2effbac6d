"""The load generator: N listeners over `websockets` or HTTP streams, ramped, optionally over P processes.

This module is the I/O edge. Each WebSocket listener is an asyncio protocol on websockets' sans-I/O
client (`ListenerProtocol`) that decodes messages (`frames`) and feeds them, with their arrival time
(when the message's last bytes reached the socket, stamped by the kernel: `stamped`) and the time they
were read, to its pure `ListenerSession`. An HTTP stream listener (`http-mp3`, `http-opus`) is
`http_client.HttpListenerProtocol`, recording in an `HttpListenerSession`.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import DATA_OPCODES, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from auralis_ray.tools.loadtest.config import LoadTestConfig
from auralis_ray.tools.loadtest.frames import (CHUNK_S, AudioFrame, FrameError, decode_binary, decode_opus,
                                              decode_text)
from auralis_ray.tools.loadtest.http_client import HttpStatusError, open_http_listener
from auralis_ray.tools.loadtest.http_session import HttpListenerSession
from auralis_ray.tools.loadtest.httpbody import HttpStreamError
from auralis_ray.tools.loadtest.listener import CLOSE_TIMEOUT_S, Listener, connect
from auralis_ray.tools.loadtest.procmon import (
    ProcessSet,
    Snapshot,
    cpu_percent_between,
    cpu_percent_by_name,
    self_and_workers,
    total_rss,
)
from auralis_ray.tools.loadtest.report import MB, LoadReport, ProcessUsage, build_report
from auralis_ray.tools.loadtest.session import ListenerRecord, ListenerSession, ListenerSummary
from auralis_ray.monitor.priority import yield_to_other_sessions

START_MARGIN_S = 0.2  # between deciding t0 and the first connection
RSS_SAMPLE_S = 2.0
# JSON audio: every listener's first chunk and one in this many after it are base64-decoded and
# checked in full; the others have their JSON, fields and encoded length checked (see decode_text)
VERIFY_PCM_EVERY = 10
MAX_MESSAGE_BYTES = 2**20


@dataclass(frozen=True)
class Schedule:
    """When a run starts and when its measurement window opens and closes."""

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
    """What one load generator process sends back: listener summaries and lateness samples."""

    summaries: list[ListenerSummary]
    lateness_ms: np.ndarray  # live chunks in the window, all listeners of the worker
    read_lateness_ms: np.ndarray  # the same chunks, by when the generator read them
    chunk_ids: np.ndarray  # the chunk id of each lateness value


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
    if isinstance(exc, (HttpStatusError, HttpStreamError)):
        return str(exc)  # "HTTP 503", or what was wrong with the stream
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "handshake timeout"
    if isinstance(exc, InvalidHandshake):
        return f"handshake: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"connect: {exc.strerror or type(exc).__name__}"
    return type(exc).__name__


def _handle(session: ListenerSession, message: bytes, text: bool, arrived_at: float, now: float,
            decode_audio: Callable[[bytes], AudioFrame] = decode_binary) -> None:
    """One whole message; `decode_audio` reads a binary one (the PCM frame, or `format=opus`'s)."""
    try:
        if text:
            event = decode_text(message, verify_pcm=session.chunks_received % VERIFY_PCM_EVERY == 0)
        else:
            event = decode_audio(message)
    except FrameError:
        session.on_bad_frame()
        return
    if isinstance(event, AudioFrame):
        session.on_audio(event.chunk_id, event.timestamp, now, arrived_at, size=len(message))
    elif event.type == "connection_established":
        session.on_established(event.body.get("server_time"), arrived_at)
    elif event.type == "error":
        session.on_error(str(event.body.get("error_code")))


class ListenerProtocol(Listener):
    """One listener, driven by websockets' sans-I/O client (`ClientProtocol`) straight from the event
    loop's callbacks: no reader task, queue or message assembler per listener, so a thousand of them
    leave the cores to the server under test. Each complete message carries the time its last bytes
    reached the socket (the kernel's stamp, where the transport has one) and the time they were read,
    so lateness measures the server and the network, not this load generator's own scheduling."""

    lost_before_open = "closed during the handshake"

    def __init__(self, ws: ClientProtocol, session: ListenerSession,
                 decode_audio: Callable[[bytes], AudioFrame] = decode_binary) -> None:
        super().__init__()
        self.ws = ws
        self.session = session
        self.decode_audio = decode_audio
        self._fragments: list[bytes] = []
        self._text = False

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.session.on_request_sent(time.time())  # before the write: the answer may arrive before it returns
        self.ws.send_request(self.ws.connect())
        self._send_pending()

    def receive(self, data: bytes, arrived_at: float, read_at: float) -> None:
        try:
            self.ws.receive_data(data)
            self._process(arrived_at, read_at)
        except Exception as exc:  # noqa: BLE001 - a client-side fault ends this listener only
            self.session.on_failed(f"client error: {type(exc).__name__}: {exc}")
            if self.transport is not None:
                self.transport.abort()

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        now = time.time()
        self._process(now, now)
        return False

    # -- websocket events -------------------------------------------------------------------
    def _process(self, arrived_at: float, now: float) -> None:
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                self._on_frame(event, arrived_at, now)
            elif not self.opened.done():  # the handshake response
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
        self._send_pending()

    def _on_frame(self, frame: Frame, arrived_at: float, now: float) -> None:
        if frame.opcode not in DATA_OPCODES:
            return  # ping, pong, close: the sans-I/O protocol answers them
        if frame.opcode is not Opcode.CONT:
            self._fragments.clear()
            self._text = frame.opcode is Opcode.TEXT
        self._fragments.append(frame.data)
        if not frame.fin:
            return
        message = self._fragments[0] if len(self._fragments) == 1 else b"".join(self._fragments)
        self._fragments.clear()
        _handle(self.session, message, self._text, arrived_at, now, self.decode_audio)

    def _send_pending(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.ws.close_expected():
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.close)

    # -- the edge's own actions -------------------------------------------------------------
    def _begin_close(self) -> None:
        """Start the close handshake (1000) where the connection is open."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self._send_pending()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code


async def _open(config: LoadTestConfig, session: ListenerSession) -> ListenerProtocol:
    uri = parse_uri(config.listener_uri(session.client_id))
    ws = ClientProtocol(
        uri,
        extensions=enable_client_permessage_deflate(None) if config.deflate else None,
        max_size=MAX_MESSAGE_BYTES,
    )
    listener = ListenerProtocol(ws, session, decode_opus if config.format == "opus" else decode_binary)
    return await connect(listener, uri.host, uri.port, uri.secure)


async def _listen(
    config: LoadTestConfig, session: ListenerRecord, opens_at: float, open_conns: set[Listener],
    open_listener: Callable[[LoadTestConfig, Any], Awaitable[Listener]],
) -> None:
    await _sleep_until(opens_at)
    session.on_handshake_start(time.time())
    try:
        listener = await asyncio.wait_for(open_listener(config, session), config.connect_timeout_s)
    except Exception as exc:  # noqa: BLE001 - every failure is a counted outcome
        session.on_failed(_failure_reason(exc))
        return
    open_conns.add(listener)
    try:
        await listener.closed
    finally:
        open_conns.discard(listener)
        if session.established_at is None and session.failure is None:
            session.on_failed(f"closed {listener.close_code} before connection_established")
        session.on_closed(listener.close_code, time.time())


async def run_listeners(
    config: LoadTestConfig, indices: list[int], schedule: Schedule, run_id: str
) -> WorkerResult:
    """Open the given listeners on schedule, record until window_end, close them."""
    record, open_listener = (HttpListenerSession, open_http_listener) if config.is_http else (ListenerSession, _open)
    sessions = [
        record(
            i, f"lt{run_id}-{i}", window=(schedule.window_start, schedule.window_end),
            prebuffer_chunks=config.prebuffer_chunks, chunk_s=CHUNK_S, stall_s=config.stall_s,
        )
        for i in indices
    ]
    open_conns: set[Listener] = set()
    tasks = [
        asyncio.create_task(
            _listen(config, s, schedule.opens_at(s.index, config.ramp_rate), open_conns, open_listener))
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
    read_lateness = [v for s in sessions for v in s.window_lateness_ms(by_read=True)]
    chunk_ids = [v for s in sessions for v in s.window_chunk_ids()]
    return WorkerResult([s.summary() for s in sessions], np.asarray(lateness, dtype=np.float64),
                        np.asarray(read_lateness, dtype=np.float64), np.asarray(chunk_ids, dtype=np.int64))


# -- worker processes -----------------------------------------------------------------

def _worker_main(config: LoadTestConfig, indices: list[int], run_id: str, conn: Any) -> None:
    yield_to_other_sessions(config.nice)
    conn.send(("ready", os.getpid()))
    schedule = conn.recv()
    if schedule is None:
        return
    result = run_async(run_listeners(config, indices, schedule, run_id))
    conn.send(("result", result))
    conn.close()


class _Workers:
    """The load generator's worker processes, each running a share of the listeners."""

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
) -> tuple[float, float, float | None, dict[str, float], float | None, list[int], Snapshot]:
    """CPU% of server and generator and RSS samples over [window_start, window_end]."""
    await _sleep_until(schedule.window_start)
    t_start = time.time()
    s0, g0 = await asyncio.to_thread(lambda: (server.snapshot(), generator.snapshot()))
    rss_samples = [total_rss(s0)]
    while time.time() + RSS_SAMPLE_S < schedule.window_end:
        await asyncio.sleep(RSS_SAMPLE_S)
        rss_samples.append(total_rss(await asyncio.to_thread(server.snapshot, False)))
    await _sleep_until(schedule.window_end)
    t_end = time.time()
    s1, g1 = await asyncio.to_thread(lambda: (server.snapshot(), generator.snapshot()))
    rss_samples.append(total_rss(s1))
    wall = t_end - t_start
    server_cpu = cpu_percent_between(s0, s1, wall, t_start) if s1 else None
    by_name = cpu_percent_by_name(s0, s1, wall, t_start) if s1 else {}
    gen_cpu = cpu_percent_between(g0, g1, wall, t_start)
    return wall, gen_cpu, server_cpu, by_name, float(np.mean(rss_samples)) if s1 else None, rss_samples, s1


def run_loadtest(config: LoadTestConfig) -> LoadReport:
    """Run one load test to completion and return its report (blocking)."""
    return run_async(run_loadtest_async(config))


async def run_loadtest_async(config: LoadTestConfig) -> LoadReport:
    """The same as `run_loadtest`, inside a running event loop."""
    run_id = secrets.token_hex(4)
    server = server_process_set(config)
    # listeners run in worker processes when there are several or they run at a lower priority
    # (this process measures, and may start a baseline server after, at its own priority)
    workers = _Workers(config, run_id) if config.procs > 1 or config.nice > 0 else None
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
        idle_by_name = cpu_percent_by_name(idle0, idle1, idle_wall, t_idle) if idle1 and config.idle_s > 0 else {}
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
        wall, gen_cpu, server_cpu, window_by_name, rss_mean, rss_samples, last = await measure
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
        cpu_marginal_by_name={name: window_by_name[name] - idle_by_name.get(name, 0.0)
                              for name in window_by_name} if idle_by_name else {},
    )
    summaries = sorted((s for r in results for s in r.summaries), key=lambda s: s.index)
    lateness = np.concatenate([r.lateness_ms for r in results]) if results else np.empty(0)
    read_lateness = np.concatenate([r.read_lateness_ms for r in results]) if results else np.empty(0)
    chunk_ids = np.concatenate([r.chunk_ids for r in results]) if results else np.empty(0, dtype=np.int64)
    return build_report(
        config, summaries, lateness, window_s=wall, server=usage, generator_cpu_percent=gen_cpu,
        read_lateness_ms=read_lateness, window_chunk_ids=chunk_ids,
    )
