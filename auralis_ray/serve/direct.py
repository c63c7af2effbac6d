"""Direct writes: pre-framed WebSocket frames straight onto the listener's socket.

A server-to-client frame is unmasked, so one chunk's frame is the same bytes for every listener
(`EncodedChunk.wire_frame`). Through the ASGI `send` each listener would cost a task wake-up, an
ASGI message, a re-framing and two copies of the payload; here it costs one `transport.write` of
shared bytes, made from the station's tick for all listeners at once (what a bare `websockets`
broadcast does). uvicorn's protocol object still owns the connection: it reads and answers client
frames (pings, close) and closes the socket; only data frames take this path, all of them, so a
negotiated permessage-deflate never sees a message of ours (uncompressed messages are valid with it,
RFC 7692 section 6).

The transport is found by walking the `send` callable Serve passes in (its closure holds uvicorn's
bound `send`). Where it is not there (Serve's own proxy path, another ASGI server) the listener
simply uses the ASGI `send`.
"""

from __future__ import annotations

import asyncio
from typing import Any

# uvicorn's default WebSocket protocol (ws="auto" with `websockets` installed), the one measured and tested
_PROTOCOL = ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol")
_TRANSPORT_METHODS = ("write", "get_write_buffer_size", "is_closing", "abort")


def find_transport(send: Any, max_depth: int = 4) -> asyncio.Transport | None:
    """The transport of the uvicorn WebSocket protocol behind an ASGI `send`, if reachable."""
    stack = [(send, 0)]
    seen: set[int] = set()
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > max_depth:
            continue
        seen.add(id(obj))
        owner = getattr(obj, "__self__", None)
        if owner is not None and (type(owner).__module__, type(owner).__name__) == _PROTOCOL:
            transport = getattr(owner, "transport", None)
            # uvloop's transports are not asyncio.Transport subclasses: check the methods used
            if all(callable(getattr(transport, m, None)) for m in _TRANSPORT_METHODS) \
                    and getattr(owner, "handshake_complete", True):
                return transport
            return None
        function = getattr(obj, "__func__", obj)
        for cell in getattr(function, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value):
                stack.append((value, depth + 1))
    return None


class DirectWriter:
    """Writes complete frames to one listener's transport and reports its backlog."""

    def __init__(self, transport: asyncio.Transport, backlog_limit: int):
        self.transport = transport
        self.backlog_limit = backlog_limit

    @property
    def backlog(self) -> int:
        return self.transport.get_write_buffer_size()

    def has_room(self) -> bool:
        """False while the socket still holds more than `backlog_limit` unsent bytes."""
        return self.backlog <= self.backlog_limit

    @property
    def closed(self) -> bool:
        return self.transport.is_closing()

    def write(self, frames: list[bytes]) -> None:
        write = self.transport.write
        for frame in frames:
            write(frame)

    def abort(self) -> None:
        """Drop the connection and its unsent bytes at once (a listener that stopped reading)."""
        self.transport.abort()
