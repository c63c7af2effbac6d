"""An HTTP/1.1 stream response, read as its bytes arrive: the head with h11, then the body's framing.

Pure: `StreamResponse` is fed the bytes a socket received and returns the body bytes they complete.
h11 writes the request and parses the response head, which is where HTTP's rules are intricate. The
body of a live stream is then framed by hand (chunked, a length, or until the connection closes):
h11 takes 10-20 µs to hand over each piece of a body, and a thousand listeners each reading ten
times a second would spend a fifth of a core in it, on the machine whose server they measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11

MAX_HEAD_BYTES = 16 * 1024
MAX_CHUNK_LINE_BYTES = 1024
USER_AGENT = "auralis-loadtest"


class HttpStreamError(ValueError):
    """A response that does not follow HTTP/1.1 (a bad head, a bad chunk size)."""


@dataclass(frozen=True)
class ResponseHead:
    """A response's status line and headers (names in lower case; a repeated name keeps its last value)."""

    status: int
    reason: str
    headers: dict[str, str]


class ChunkedBody:
    """`Transfer-Encoding: chunked` (RFC 9112 section 7.1), decoded incrementally: each chunk's size in
    hex on a line of its own (extensions after `;` are ignored), its bytes and a CRLF; a chunk of size
    0 and the trailer section end the body."""

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._line = bytearray()
        self._left = 0
        self.complete = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        position, end = 0, len(data)
        while position < end and not self.complete:
            if self._state == self._DATA:
                take = min(self._left, end - position)
                out.append(data[position:position + take])
                position += take
                self._left -= take
                if self._left == 0:
                    self._state = self._DATA_END
                continue
            newline = data.find(b"\n", position)
            if newline < 0:
                self._line += data[position:]
                if len(self._line) > MAX_CHUNK_LINE_BYTES:
                    raise HttpStreamError("a chunked body's line is too long")
                break
            self._line += data[position:newline + 1]
            position = newline + 1
            line = bytes(self._line).rstrip(b"\r\n")
            self._line.clear()
            self._on_line(line)
        return out

    def _on_line(self, line: bytes) -> None:
        if self._state == self._SIZE:
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpStreamError(f"bad chunk size line {line[:40]!r}") from None
            if size < 0:
                raise HttpStreamError(f"bad chunk size line {line[:40]!r}")
            self._state, self._left = (self._TRAILER, 0) if size == 0 else (self._DATA, size)
        elif self._state == self._DATA_END:
            if line:
                raise HttpStreamError("a chunk's data is not followed by CRLF")
            self._state = self._SIZE
        elif not line:  # the blank line after the trailer fields
            self.complete = True


class IdentityBody:
    """A body of `length` bytes, or (None) one that runs until the connection closes."""

    def __init__(self, length: int | None) -> None:
        self._left = length
        self.complete = length == 0

    def feed(self, data: bytes) -> list[bytes]:
        if self._left is None:
            return [data]
        if self.complete:
            return []
        piece = data[:self._left]
        self._left -= len(piece)
        self.complete = self._left == 0
        return [piece]


class StreamResponse:
    """One GET of a stream: the request's bytes, then the response's head and body as they arrive."""

    def __init__(self, host: str, target: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._http = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=target,
                              headers=[("Host", host), ("User-Agent", USER_AGENT), ("Accept", "*/*"), *headers])
        self.request = self._http.send(request) + self._http.send(h11.EndOfMessage())
        self.head: ResponseHead | None = None
        self.body: ChunkedBody | IdentityBody | None = None
        self._head_bytes = bytearray()

    @property
    def complete(self) -> bool:
        """The whole body has arrived (a live stream's body normally never ends)."""
        return self.body is not None and self.body.complete

    def feed(self, data: bytes) -> list[bytes]:
        """The body bytes that `data` brings; `head` is set once the whole head has arrived."""
        if self.body is not None:
            return self.body.feed(data)
        self._head_bytes += data
        end = self._head_bytes.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head_bytes) > MAX_HEAD_BYTES:
                raise HttpStreamError(f"no end of the response head in {MAX_HEAD_BYTES} bytes")
            return []
        head, rest = bytes(self._head_bytes[:end + 4]), bytes(self._head_bytes[end + 4:])
        self._head_bytes.clear()
        self.head = self._parse_head(head)
        self.body = self._body_for(self.head)
        return self.body.feed(rest) if rest else []

    def _parse_head(self, head: bytes) -> ResponseHead:
        self._http.receive_data(head)
        try:
            event = self._http.next_event()
        except h11.RemoteProtocolError as exc:
            raise HttpStreamError(f"bad response head: {exc}") from None
        if not isinstance(event, h11.Response):
            raise HttpStreamError("no response head")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
        return ResponseHead(event.status_code, event.reason.decode("latin-1"), headers)

    @staticmethod
    def _body_for(head: ResponseHead) -> ChunkedBody | IdentityBody:
        if "chunked" in head.headers.get("transfer-encoding", "").lower():
            return ChunkedBody()
        length = head.headers.get("content-length")
        return IdentityBody(int(length) if length is not None else None)
