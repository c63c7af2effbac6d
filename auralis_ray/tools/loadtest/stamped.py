"""A TCP connection whose reads carry the time the kernel received the bytes (Linux SO_TIMESTAMPNS).

The load generator shares the machine with the server it measures. Stamping a chunk when the
generator's event loop gets round to reading it would add the generator's own queueing (hundreds of
sockets become readable at each tick) to the server's lateness. The kernel stamps each packet as it
arrives at the listener's socket, which is what a listener on its own machine would see; the report
gives both (`lateness` from the kernel stamp, `read lateness` from the read).

`StampedSocketTransport` is the smallest transport the listener protocol needs (write, close,
abort, EOF) over a non-blocking socket watched with `loop.add_reader`; `recvmsg` returns the data
with the stamp of its last packet. Where the kernel gives no stamp the read time is used.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from typing import Any, Protocol

# Linux: SO_TIMESTAMPNS (35) = SCM_TIMESTAMPNS, a struct timespec of CLOCK_REALTIME (time.time()'s clock)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
KERNEL_STAMPS = sys.platform.startswith("linux")
_TIMESPEC = struct.Struct("@qq")
READ_BYTES = 64 * 1024  # above a frame; 256 KiB reads cost twice the CPU (allocation per read)
ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size)


class StampedReceiver(Protocol):
    """What `StampedSocketTransport` delivers to: data with its kernel arrival stamp and read time."""

    def connection_made(self, transport: Any) -> None: ...
    def receive(self, data: bytes, arrived_at: float, read_at: float) -> None: ...
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...


def kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            return seconds + nanoseconds * 1e-9
    return None


class StampedSocketTransport:
    """A minimal asyncio transport over a socket whose reads carry kernel arrival stamps."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StampedReceiver) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._pending = bytearray()  # what the socket did not take yet (only ever a few small frames)
        self._closing = False

    @classmethod
    async def connect(cls, host: str, port: int, protocol: StampedReceiver) -> StampedSocketTransport:
        loop = asyncio.get_running_loop()
        family, kind, proto, _, address = (await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if KERNEL_STAMPS:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        transport = cls(loop, sock, protocol)
        protocol.connection_made(transport)
        loop.add_reader(transport._fd, transport._on_readable)
        return transport

    # -- reading ---------------------------------------------------------------------------
    def _on_readable(self) -> None:
        if self._sock is None:
            return
        try:
            data, ancdata, _, _ = self._sock.recvmsg(READ_BYTES, ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        read_at = time.time()
        if not data:
            self._protocol.eof_received()
            self._lost(None)
            return
        stamp = kernel_stamp(ancdata)
        self._protocol.receive(data, read_at if stamp is None else min(stamp, read_at), read_at)

    # -- writing ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._sock is None or self._closing:
            return
        if self._pending:
            self._pending += data
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self._pending += data[sent:]
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        if self._sock is None:
            return
        try:
            sent = self._sock.send(self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self._pending[:sent]
        if not self._pending:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._lost(None)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._sock is not None and not self._pending:
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    # -- closing ---------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing or self._sock is None

    def close(self) -> None:
        """Close once what is pending has been sent."""
        self._closing = True
        if not self._pending:
            self._lost(None)

    def abort(self) -> None:
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        sock.close()
        self._protocol.connection_lost(exc)
