"""One listener's socket side: its session, its direct writer, its sender task.

The session (stream/client.py) decides what to send; a Listener carries it out. With direct writes
the station's tick writes each chunk straight to the socket (`send_live`, `flush`); the sender task
sends the rest (the opening burst, replies, the close) through the writer or the ASGI `send`.
An HttpListener does the same for a listener of an HTTP stream (stream/http_listener.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Coroutine, Iterable

from ..monitor.metrics import PerformanceMetrics

from ..stream.client import ClientSession
from ..stream.http_fanout import LiveSpans
from ..stream.http_listener import HttpStreamSession
from .direct import BodyWriter, DirectWriter


log = logging.getLogger(__name__)


def report_failures(results: Iterable[object], listener_name: str, metrics: PerformanceMetrics) -> None:
    """Log and count what a listener's tasks raised (their `gather` results); a cancel is no failure."""
    for result in results:
        if isinstance(result, Exception):
            log.error("listener %s failed: %r", listener_name, result, exc_info=result)
            metrics.inc_websocket_errors("listener_failed")


class Listener:
    """One listener's socket side: its session, its generation (which of its client_id's sockets over
    time this is, for the client_id registry), its writer when frames go straight to the socket, and
    the task that sends what the tick does not."""

    def __init__(self, session: ClientSession, generation: int, writer: DirectWriter | None = None):
        self.session = session
        self.generation = generation
        self.writer = writer
        self.wake = asyncio.Event()  # the sender has something to do
        self.sender: asyncio.Task | None = None

    def start_sender(self, sending: Coroutine) -> asyncio.Task:
        """Run `sending` (the endpoint's send loop) as this listener's sender; `close` may cancel it."""
        self.sender = asyncio.create_task(sending)
        self.wake.set()  # the opening burst
        return self.sender

    def close(self, code: int, reason: str) -> None:
        """Ask the sender to close; a listener whose socket is busy is cut off at once."""
        self.session.close(code, reason)
        if self.session.is_busy:
            if self.writer is not None:
                self.writer.abort()
            elif self.sender is not None:
                self.sender.cancel()
        self.wake.set()

    def send_live(self, now: float) -> bool:
        """Direct writes, the common tick: write the newest chunk if it is all there is to send.
        False: nothing was done (use the session's pump and `flush`)."""
        writer = self.writer
        if writer is None or self.session.closing is not None or writer.closed or not writer.has_room():
            return False
        frame = self.session.take_live(now)
        if frame is None:
            return False
        writer.transport.write(frame)
        return True

    def flush(self, now: float) -> None:
        """Direct writes: send what the session has, unless the socket still holds too much."""
        session, writer = self.session, self.writer
        if writer.closed:
            return
        if not writer.has_room():
            session.socket_busy(now)
            return
        frames = session.take_frames(now, wire=True)
        if frames:
            writer.write(frames)
        session.sent(frames)


class HttpListener:
    """One HTTP stream listener's socket side: its session (stream/http_listener.py), the writer of its
    response body once the response has started, or, where the transport is not reachable, the
    sender task that takes the writer's place."""

    def __init__(self, session: HttpStreamSession):
        self.session = session
        self.writer: BodyWriter | None = None
        self.sender: asyncio.Task | None = None
        self.streaming = False  # the response has started: the tick sends its body
        self.wake = asyncio.Event()  # the sender has something to do
        self.ended = asyncio.Event()  # the server ends the stream (a drain, a listener that stopped reading)
        self.dropped = False

    @property
    def listener_id(self) -> str:
        return self.session.listener_id

    def start(self, now: float, spans: LiveSpans) -> None:
        """The response has started: send the opening burst, then each chunk from the tick."""
        self.streaming = True
        self.send_due(now, spans)

    def send_due(self, now: float, spans: LiveSpans) -> bool:
        """Send what is due (the tick; `spans`: the tick's common writes); True when the listener turned
        out to have stopped reading and was dropped just now."""
        session, writer = self.session, self.writer
        if not self.streaming or session.closing is not None or writer is not None and writer.closed:
            return False
        if not session.ready_to_write():  # the next tick brings the rest of the write
            return False
        if writer is not None and writer.has_room():  # the common write: the chunks due, at once
            span = session.take_live(now, spans)
            if span is not None:
                writer.write_span(span)
                return False
        if session.over_backlog(0 if writer is None else writer.backlog):
            self.drop()
            return True
        if writer is None:
            if session.has_due():
                self.wake.set()
            return False
        pieces = session.take(now)
        if pieces:
            writer.write(pieces)
        return False

    def close(self, code: int, reason: str) -> None:
        """End the stream (a drain's end; `code` is the WebSocket listeners' close code, unused here)."""
        self.session.close(reason)
        self.ended.set()

    def drop(self) -> None:
        """Cut off a listener that stopped reading, with what its socket still holds."""
        self.session.close("the listener stopped reading")
        self.dropped = True
        if self.writer is not None:
            self.writer.abort()
        elif self.sender is not None:
            self.sender.cancel()
        self.ended.set()
