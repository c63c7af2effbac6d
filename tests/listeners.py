"""A small protocol client for the integration tests (written against PROTOCOL.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import websockets

from auralis_ray.tools.loadtest.player import SimulatedPlayer
from waiting import wait_until_async

CHUNK_BYTES = 17_640


@dataclass
class Recording:
    client_id: str
    opened_at: float = 0.0
    established: dict | None = None
    first_audio_at: float | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)  # every non-audio message, in order
    events: list = field(default_factory=list)  # ("audio", id) / ("error", code) in arrival order
    close_code: int | None = None

    def errors(self, code: str | None = None) -> list[dict]:
        return [m for m in self.messages if m["type"] == "error" and (code is None or m["error_code"] == code)]

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    def unannounced_gaps(self) -> int:
        gaps, previous, announced = 0, None, False
        for kind, value in self.events:
            if kind == "error" and value == "BUFFER_OVERRUN":
                announced = True
            elif kind == "audio":
                if previous is not None and value != previous + 1 and not announced:
                    gaps += 1
                previous, announced = value, False
        return gaps

    def underruns(self, prebuffer_ms: int = 500) -> int:
        """Underruns of a player that starts once it holds `prebuffer_ms`, then plays in real time."""
        player = SimulatedPlayer(prebuffer_chunks=prebuffer_ms // 100)
        for arrived in self.arrivals:
            player.push(arrived)
        if self.arrivals:
            player.advance(self.arrivals[-1])
        return player.underruns


def decode(frame) -> tuple[str, dict | None, int | None, bytes | None, float | None]:
    if isinstance(frame, bytes):
        cid, ts = struct.unpack("<Qd", frame[:16])
        return "audio", None, cid, frame[16:], ts
    message = json.loads(frame)
    if message["type"] == "audio":
        return "audio", message, message["chunk_id"], base64.b64decode(message["data"]), message["timestamp"]
    return message["type"], message, None, None, None


async def listen(url: str, seconds: float, client_id: str = "", send: list | None = None,
                 subprotocols=None, rec: Recording | None = None) -> Recording:
    """Listen for `seconds` (or until the server closes), recording into `rec` (a new one if None)."""
    rec = rec if rec is not None else Recording(client_id)
    rec.opened_at = time.time()
    try:
        async with websockets.connect(url, max_size=2**22, subprotocols=subprotocols, open_timeout=10) as ws:
            for item in send or []:
                await ws.send(item)
            deadline = time.time() + seconds
            while True:
                remaining = deadline - time.time()
                if remaining <= 0:
                    break
                try:
                    frame = await asyncio.wait_for(ws.recv(), remaining)
                except asyncio.TimeoutError:
                    break
                now = time.time()
                kind, message, cid, pcm, ts = decode(frame)
                if kind == "audio":
                    if rec.first_audio_at is None:
                        rec.first_audio_at = now
                    rec.chunks[cid] = pcm
                    rec.order.append(cid)
                    rec.arrivals.append(now)
                    rec.timestamps.append(ts)
                    rec.events.append(("audio", cid))
                else:
                    if kind == "connection_established":
                        rec.established = message
                    if kind == "error":
                        rec.events.append(("error", message["error_code"]))
                    rec.messages.append(message)
    except websockets.ConnectionClosed as closed:
        rec.close_code = closed.rcvd.code if closed.rcvd else None
    return rec


async def listening(url: str, seconds: float, client_id: str = "", timeout: float = 10.0) -> asyncio.Task:
    """`listen` in a task, returned once its connection_established has arrived (the server has
    registered the listener) or the task has ended; await the task for the Recording."""
    rec = Recording(client_id)
    task = asyncio.create_task(listen(url, seconds, client_id, rec=rec))
    await wait_until_async(lambda: rec.established is not None or task.done(), timeout,
                           f"connection_established on {url}")
    return task


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    return float(np.sqrt(np.mean(samples**2)))


# ---- listeners that reconnect -------------------------------------------------------------------

LATE_MS = 50.0  # PROTOCOL.md: 99 % of live chunks within 50 ms of their schedule
BACK_CHUNKS = 20  # 2 s of chunks on schedule: a listener that has recovered from a fault


@dataclass
class Session:
    """A Recording over several connections: reconnects with resume_from = last chunk_id received."""

    client_id: str
    order: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    events: list = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    closes: list[tuple[float, int | None]] = field(default_factory=list)
    reconnects: list[float] = field(default_factory=list)

    def unannounced_gaps(self) -> int:
        return Recording(self.client_id, events=self.events).unannounced_gaps()

    def underruns(self, prebuffer_ms: int) -> int:
        return Recording(self.client_id, arrivals=self.arrivals).underruns(prebuffer_ms)

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    def recovery(self, since: float, late_ms: float = LATE_MS) -> dict:
        """After `since`: the longest silence, and when chunks arrived on schedule again."""
        after = [(a, t) for a, t in zip(self.arrivals, self.timestamps) if a >= since]
        late = [a for a, t in after if (a - t) * 1000 > late_ms]
        times = [since] + [a for a, _ in after]
        silence = max((b - a for a, b in zip(times, times[1:])), default=None)
        return {"on_schedule_after_s": round(max(late) - since, 3) if late else 0.0,
                "max_silence_s": None if silence is None else round(silence, 3)}

    def on_schedule_since(self, since: float, chunks: int = BACK_CHUNKS, late_ms: float = LATE_MS) -> bool:
        """The last `chunks` chunks arrived after `since`, consecutive, each within `late_ms` of its schedule."""
        if len(self.order) < chunks or self.arrivals[-chunks] < since:
            return False
        ids = self.order[-chunks:]
        return (ids == list(range(ids[0], ids[0] + chunks))
                and all((a - t) * 1000 <= late_ms for a, t in zip(self.arrivals[-chunks:], self.timestamps[-chunks:])))


@dataclass
class Deadline:
    """When listening stops (a time.time()); a test brings it forward once it has heard what it waits for."""

    at: float

    def remaining(self) -> float:
        return self.at - time.time()


async def listen_resuming(url: str, until: Deadline, client_id: str, silent_timeout: float = 4.0,
                          resume: bool = True, rec: Session | None = None) -> Session:
    """Listen until `until`, reconnecting (with resume_from unless `resume` is False, in which case the
    first close ends it), recording into `rec` (a new one if None)."""
    rec = rec if rec is not None else Session(client_id)
    last: int | None = None
    while until.remaining() > 0:
        target = url if last is None or not resume else f"{url}&resume_from={last}"
        code = None
        try:
            async with websockets.connect(target, max_size=2**22, open_timeout=5) as ws:
                while True:
                    remaining = until.remaining()
                    if remaining <= 0:
                        return rec
                    try:
                        frame = await asyncio.wait_for(ws.recv(), min(remaining, silent_timeout))
                    except asyncio.TimeoutError:
                        if until.remaining() <= 0:
                            return rec
                        break  # an open but silent socket is dead: reconnect
                    now = time.time()
                    if now >= until.at:  # brought forward while this listener waited: not recorded
                        return rec
                    kind, message, cid, _pcm, ts = decode(frame)
                    if kind == "audio":
                        rec.order.append(cid)
                        rec.arrivals.append(now)
                        rec.timestamps.append(ts)
                        rec.events.append(("audio", cid))
                        last = cid
                    else:
                        if kind == "error":
                            rec.events.append(("error", message["error_code"]))
                        rec.messages.append({**message, "_at": now})
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake):
            code = -1
        rec.closes.append((time.time(), code))
        if not resume:
            return rec
        await asyncio.sleep(0.1)  # this client's pause before it reconnects
        rec.reconnects.append(time.time())
    return rec


PLAYING_CHUNKS = 20  # the opening burst (one normal tier target: 10 chunks) and 1 s at the live edge


@dataclass
class Playing:
    """Listeners started together by `playing`, each recording into its Session until `deadline`."""

    sessions: list[Session]
    tasks: list[asyncio.Task]
    deadline: Deadline

    async def recordings(self) -> list[Session]:
        """Every Session, once each listener has stopped (at the deadline, or closed without resume)."""
        await asyncio.gather(*self.tasks)
        return self.sessions

    async def until_on_schedule(self, since: float) -> list[Session]:
        """Every Session, once each listener has heard BACK_CHUNKS chunks on schedule since `since` (it
        stops then) or has stopped at the deadline."""
        def back_or_stopped() -> bool:
            return all(s.on_schedule_since(since) or t.done() for s, t in zip(self.sessions, self.tasks))

        await wait_until_async(back_or_stopped, max(self.deadline.remaining(), 0) + 10.0,
                               f"{len(self.sessions)} listeners back on schedule or stopped")
        self.deadline.at = min(self.deadline.at, time.time())
        return await self.recordings()


async def playing(listeners: list[tuple[str, str]], seconds: float, resume: bool = True,
                  timeout: float = 30.0) -> Playing:
    """`listen_resuming` for each (url, client_id), started together, for at most `seconds`; returned
    once every listener has heard PLAYING_CHUNKS chunks (or ended)."""
    sessions = [Session(client_id) for _, client_id in listeners]
    deadline = Deadline(time.time() + seconds)
    tasks = [asyncio.create_task(listen_resuming(url, deadline, client_id, resume=resume, rec=session))
             for (url, client_id), session in zip(listeners, sessions)]
    await wait_until_async(
        lambda: all(len(s.order) >= PLAYING_CHUNKS or t.done() for s, t in zip(sessions, tasks)), timeout,
        f"{len(listeners)} listeners to hear {PLAYING_CHUNKS} chunks each")
    return Playing(sessions, tasks, deadline)
