"""What every load-generator listener's socket does, whichever stream it reads.

A listener is an asyncio protocol object driven by the event loop's callbacks: the WebSocket one
(`client.ListenerProtocol`) and the HTTP stream one (`http_client.HttpListenerProtocol`) subclass
`Listener`, which holds the socket, the futures a run waits on and the close, and `connect` opens
either kind's socket and waits until the listener is open.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeVar

from auralis_ray.tools.loadtest.stamped import StampedSocketTransport

CLOSE_TIMEOUT_S = 2.0


class Listener(asyncio.Protocol):
    """One listener's socket: `opened` resolves when its stream starts (or fails with why it did not),
    `closed` when the socket is gone. A subclass reads the bytes in `receive`, and begins its close
    in `_begin_close`."""

    lost_before_open: str  # the failure of a socket lost before `opened` resolved

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: StampedSocketTransport | asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    # -- transport callbacks ------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:  # asyncio's own transport (TLS): stamped when read
        now = time.time()
        self.receive(data, now, now)

    def receive(self, data: bytes, arrived_at: float, read_at: float) -> None:
        """Bytes that reached the socket at `arrived_at` and were read at `read_at`."""
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError(self.lost_before_open))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- the listener's own actions -------------------------------------------------------------
    async def close(self) -> None:
        """Begin the close (`_begin_close`), then wait for the socket to close; abort it after
        CLOSE_TIMEOUT_S."""
        if self.transport is None or self.closed.done():
            return
        self._begin_close()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT_S)
        except TimeoutError:
            self.transport.abort()

    def _begin_close(self) -> None:
        self.transport.close()

    @property
    def close_code(self) -> int | None:
        """The code the connection closed with, where its protocol has one."""
        return None


OpenedListener = TypeVar("OpenedListener", bound=Listener)


async def connect(listener: OpenedListener, host: str, port: int, secure: bool) -> OpenedListener:
    """Connect `listener` to host:port and wait until it is open; abort the socket if it does not open."""
    if secure:  # TLS: asyncio's transport, bytes stamped when read
        await asyncio.get_running_loop().create_connection(lambda: listener, host, port, ssl=True)
    else:  # stamped by the kernel on arrival
        await StampedSocketTransport.connect(host, port, listener)
    try:
        await listener.opened
    except BaseException:
        listener.transport.abort()
        raise
    return listener
