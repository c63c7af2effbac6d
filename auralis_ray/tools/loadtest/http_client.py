"""HTTP stream listeners: the I/O edge of the `http-mp3` and `http-opus` formats.

Each listener is one socket (`StampedSocketTransport`, so arrivals carry the kernel's stamp) and a
protocol object driven by the event loop's callbacks, with no task per listener: it sends the GET
that `httpbody.StreamResponse` writes, then reads the body as it arrives, times its audio with an
`audioclock` clock (no decoding) and records it in its `HttpListenerSession`.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from auralis_ray.tools.loadtest.audioclock import Mp3Clock, OggOpusClock, StreamFormatError
from auralis_ray.tools.loadtest.config import LoadTestConfig
from auralis_ray.tools.loadtest.http_session import HttpListenerSession
from auralis_ray.tools.loadtest.httpbody import HttpStreamError, StreamResponse
from auralis_ray.tools.loadtest.listener import Listener, connect
from auralis_ray.tools.loadtest.stamped import StampedSocketTransport


def clock_for(config: LoadTestConfig) -> Mp3Clock | OggOpusClock:
    """The clock that times the stream's audio: MP3 (resyncing where asked) or Ogg Opus."""
    return Mp3Clock(resync=config.mp3_resync) if config.format == "http-mp3" else OggOpusClock()


class HttpStatusError(Exception):
    """The server answered the GET with a status other than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class HttpListenerProtocol(Listener):
    """One HTTP stream listener (see the module docstring). `opened` resolves when a 200 head arrives;
    its close closes the socket (a stream has no closing handshake) and it has no close code."""

    lost_before_open = "closed before the response head"

    def __init__(self, response: StreamResponse, clock: Mp3Clock | OggOpusClock,
                 session: HttpListenerSession) -> None:
        super().__init__()
        self.response = response
        self.clock = clock
        self.session = session

    # -- transport callbacks ------------------------------------------------------------------
    def connection_made(self, transport: StampedSocketTransport | asyncio.Transport) -> None:
        self.transport = transport
        self.session.on_request_sent(time.time())  # before the write: the answer may arrive before it returns
        transport.write(self.response.request)

    def receive(self, data: bytes, arrived_at: float, read_at: float) -> None:
        try:
            had_head = self.response.head is not None
            pieces = self.response.feed(data)
            if not had_head and self.response.head is not None:
                self._on_head(self.response.head.status, arrived_at)
                if self.response.head.status != 200:
                    return
            if pieces:
                size = sum(map(len, pieces))
                audio_s = sum(self.clock.feed(piece) for piece in pieces)
                self.session.on_body(size, audio_s, arrived_at, read_at)
        except (HttpStreamError, StreamFormatError) as exc:
            self.session.on_bad_frame()
            self._fail(f"bad stream: {exc}")
        except Exception as exc:  # noqa: BLE001 - a client-side fault ends this listener only
            self._fail(f"client error: {type(exc).__name__}: {exc}")

    def eof_received(self) -> bool:
        return False

    # -- the listener's own actions -------------------------------------------------------------
    def _on_head(self, status: int, arrived_at: float) -> None:
        self.session.on_response(status, arrived_at)
        if status == 200:
            self.opened.set_result(None)
        else:
            self.opened.set_exception(HttpStatusError(status))
            self.transport.close()

    def _fail(self, reason: str) -> None:
        self.session.on_failed(reason)
        if not self.opened.done():
            self.opened.set_exception(HttpStreamError(reason))
        if self.transport is not None:
            self.transport.abort()


async def open_http_listener(config: LoadTestConfig, session: HttpListenerSession) -> HttpListenerProtocol:
    """Connect, send the GET and wait for a 200 response head (HttpStatusError for any other status)."""
    parts = urlsplit(config.stream_url())
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    response = StreamResponse(parts.netloc, target)
    return await connect(HttpListenerProtocol(response, clock_for(config), session), parts.hostname, port,
                         secure)
