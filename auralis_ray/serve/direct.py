"""Direct writes: pre-framed WebSocket frames straight onto the listener's socket.

A server-to-client frame is unmasked, so one chunk's frame is the same bytes for every listener
(`EncodedChunk.websocket_frame`). Through the ASGI `send` each listener would cost a task wake-up, an
ASGI message, a re-framing and two copies of the payload; here it costs one `transport.write` of
shared bytes, made from the station's tick for all listeners at once (what a bare `websockets`
broadcast does). uvicorn's protocol object still owns the connection: it reads and answers client
frames (pings, close) and closes the socket; only data frames take this path, all of them, so a
negotiated permessage-deflate never sees a message of ours (uncompressed messages are valid with it,
RFC 7692 section 6).

An HTTP stream's body (serve/http_stream.py) goes the same way: once uvicorn has written the
response's status line and headers, the tick writes each chunk's bytes to the transport, in the
HTTP/1.1 chunked framing uvicorn chose for the response; uvicorn still writes its last chunk.

The transport is found by walking the `send` callable Serve passes in (its closure holds uvicorn's
bound `send`). Where it is not there (Serve's own proxy path, another ASGI server) the listener
simply uses the ASGI `send`.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from ..stream.http_fanout import CRLF, LiveSpan, chunk_size_line

# uvicorn's default WebSocket protocol (ws="auto" with `websockets` installed), the one measured and tested
_PROTOCOL = ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol")
# uvicorn's HTTP/1.1 protocol on httptools (http="auto" with httptools installed): one request's response
_HTTP_CYCLE = ("uvicorn.protocols.http.httptools_impl", "RequestResponseCycle")
_TRANSPORT_METHODS = ("write", "get_write_buffer_size", "is_closing", "abort")


def _asgi_owner(send: Any, kind: tuple[str, str], max_depth: int) -> Any | None:
    """The object of class `kind` (module, name) whose bound method sits behind an ASGI `send`."""
    stack = [(send, 0)]
    seen: set[int] = set()
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > max_depth:
            continue
        seen.add(id(obj))
        owner = getattr(obj, "__self__", None)
        if owner is not None and (type(owner).__module__, type(owner).__name__) == kind:
            return owner
        function = getattr(obj, "__func__", obj)
        for cell in getattr(function, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value):
                stack.append((value, depth + 1))
    return None


def _usable(transport: Any) -> bool:
    # uvloop's transports are not asyncio.Transport subclasses: check the methods used
    return all(callable(getattr(transport, m, None)) for m in _TRANSPORT_METHODS)


def find_transport(send: Any, max_depth: int = 4) -> asyncio.Transport | None:
    """The transport of the uvicorn WebSocket protocol behind an ASGI `send`, if reachable."""
    owner = _asgi_owner(send, _PROTOCOL, max_depth)
    transport = getattr(owner, "transport", None)
    if owner is None or not _usable(transport) or not getattr(owner, "handshake_complete", True):
        return None
    return transport


def find_http_body_transport(send: Any, max_depth: int = 4) -> tuple[asyncio.Transport, bool] | None:
    """The transport of the uvicorn HTTP response behind an ASGI `send`, once its status line and
    headers are written and while its body goes on, and whether the body is chunked (HTTP/1.1
    transfer coding); None where that is not reachable."""
    cycle = _asgi_owner(send, _HTTP_CYCLE, max_depth)
    transport = getattr(cycle, "transport", None)
    if cycle is None or not _usable(transport) or not callable(getattr(transport, "writelines", None)) \
            or not getattr(cycle, "response_started", False) or getattr(cycle, "response_complete", True):
        return None
    return transport, bool(getattr(cycle, "chunked_encoding", False))


class DirectWriter:
    """Writes complete frames to one listener's transport and reports its backlog.

    The kernel's send buffer of the socket is held to `send_buffer_bytes` (the kernel doubles it).
    Left to itself it grows to megabytes (the PCM stream's 23 s, a compressed stream's minutes), so a
    listener that stops reading would hold that much and be noticed that late; so bounded, its
    backlog reaches the limit within seconds.
    """

    def __init__(self, transport: asyncio.Transport, backlog_limit: int, send_buffer_bytes: int):
        self.transport = transport
        self.backlog_limit = backlog_limit
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
            except OSError:  # not a TCP socket: the transport's own backlog still bounds it
                pass

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


class BodyWriter(DirectWriter):
    """Writes an HTTP stream's body to its transport: each write one chunk of the chunked transfer
    coding when the response is chunked (the shared pieces are not copied where the event loop
    writes a list at once).
    """

    def __init__(self, transport: asyncio.Transport, chunked: bool, backlog_limit: int, send_buffer_bytes: int):
        super().__init__(transport, backlog_limit, send_buffer_bytes)
        self.chunked = chunked

    def write(self, pieces: list[bytes | memoryview]) -> None:
        """The pieces, in one write (nothing for no bytes: an empty chunk would end the body)."""
        size = sum(len(piece) for piece in pieces)
        if not size:
            return
        if self.chunked:
            self.transport.writelines([chunk_size_line(size), *pieces, CRLF])
        else:
            self.transport.writelines(pieces)

    def write_span(self, span: LiveSpan) -> None:
        """A tick's common write: the span's bytes, framed as the response is, one shared object."""
        data = span.chunked if self.chunked else span.body
        if data:
            self.transport.write(data)

