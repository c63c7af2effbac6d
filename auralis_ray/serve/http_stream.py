"""`/listen/{station}.mp3`, `.opus`, `.m3u`, `.pls`: a station for standard players, a raw ASGI adapter.

An HTTP stream is one endless response. Its session (stream/http_listener.py) decides what to send;
this module answers the request, registers the listener with its station's feed, whose tick writes
each chunk's bytes straight to the socket (serve/direct.py `BodyWriter`), or wakes a sender that
uses the ASGI `send` where the socket is not reachable. The stream ends when the listener goes, at
the end of a drain, or when the listener stops reading (its backlog passes
`concurrency.send_backlog_max_bytes`: the socket is dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..config import EncodingConfig
from ..stream import protocol as p
from ..stream.adaptive import TIERS
from ..stream.http_listener import HttpStreamSession, HttpStreamSettings, StreamFormat
from .direct import BodyWriter, find_http_body_transport
from .hub import ListenerHub, StationFeed
from .lifecycle import Refusal
from .listener import HttpListener, report_failures

log = logging.getLogger(__name__)

LISTEN_PREFIX = "/listen/"
PLAYLIST_TYPES = {"m3u": "audio/x-mpegurl", "pls": "audio/x-scpls"}
# a new listener's burst: at most the normal tier's depth
BURST_CHUNKS = TIERS["normal"].target_ms // p.CHUNK_DURATION_MS
AUDIO_WAIT_SEC = 2.0  # how long a request waits for a station's first chunk
RETRY_AFTER_FULL_SEC = 5  # at capacity
RETRY_AFTER_DRAIN_SEC = 1  # another replica takes the listener
RETRY_AFTERS = {Refusal.DRAINING: RETRY_AFTER_DRAIN_SEC, Refusal.FULL: RETRY_AFTER_FULL_SEC}
# on every answer of these routes: players and pages anywhere may read them, no cache keeps them
SHARED_HEADERS = [(b"cache-control", b"no-store"), (b"access-control-allow-origin", b"*"),
                  (b"access-control-expose-headers", b"icy-br, icy-metaint, icy-name")]
# a CORS preflight's answer: a page on another origin may ask for the stream with ICY metadata
PREFLIGHT_HEADERS = [(b"allow", b"GET, HEAD, OPTIONS"), (b"access-control-allow-methods", b"GET, HEAD"),
                     (b"access-control-allow-headers", b"icy-metadata"), (b"access-control-max-age", b"86400")]


def http_stream_settings(config) -> HttpStreamSettings:
    concurrency = config.concurrency
    return HttpStreamSettings(burst_chunks=BURST_CHUNKS, backlog_max_bytes=concurrency.send_backlog_max_bytes,
                              chunks_per_write=concurrency.http_chunks_per_write)


def bitrate_kbps(encoding: EncodingConfig, fmt: StreamFormat) -> int:
    """The stream's bitrate, kbit/s, as the encoding section sets it."""
    return encoding.mp3_bitrate_kbps if fmt is StreamFormat.MP3 else encoding.opus_bitrate_kbps


def send_buffer_bytes(encoding: EncodingConfig, fmt: StreamFormat) -> int:
    """The kernel's send buffer of a stream's socket: one second of it, which the kernel doubles. Left
    to itself it grows to megabytes (minutes of the stream), and a listener that stops reading is
    noticed that late."""
    return max(4096, bitrate_kbps(encoding, fmt) * 1000 // 8)


async def send_answer(send, status: int, body: bytes, content_type: str,
                      headers: list[tuple[bytes, bytes]] = ()) -> None:
    """A whole answer: status, the shared headers, `headers`, the body (none for HEAD: the server leaves it)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                            *SHARED_HEADERS, *headers]})
    await send({"type": "http.response.body", "body": body})


async def send_error(send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """`{"error": message}`, as the /api/ routes answer errors."""
    await send_answer(send, status, p.dumps({"error": message}).encode(), "application/json", headers)


def base_url(scope: dict) -> str:
    """The URL the request came to, up to the path: scheme and the Host header (the server's address without one)."""
    host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
    if not host:
        server_host, server_port = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server_host}:{server_port}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


def playlist(kind: str, station: str, base: str) -> bytes:
    """The station's streams, MP3 first (every player has it), then Ogg Opus, as an M3U or PLS playlist."""
    entries = [(f"{base}{LISTEN_PREFIX}{station}.{fmt.value}", f"Auralis {station} ({label})")
               for fmt, label in ((StreamFormat.MP3, "MP3"), (StreamFormat.OGG_OPUS, "Opus"))]
    if kind == "m3u":
        lines = ["#EXTM3U"] + [line for url, title in entries for line in (f"#EXTINF:-1,{title}", url)]
    else:
        lines = ["[playlist]"] + [line for n, (url, title) in enumerate(entries, 1)
                                  for line in (f"File{n}={url}", f"Title{n}={title}", f"Length{n}=-1")]
        lines += [f"NumberOfEntries={len(entries)}", "Version=2"]
    return ("\n".join(lines) + "\n").encode()


async def wait_for_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class HttpStreamEndpoint:
    """ASGI app for the `/listen/` routes; the replica is looked up at call time."""

    def __init__(self, get_replica):
        self.get_replica = get_replica

    async def __call__(self, scope, receive, send) -> None:
        replica = self.get_replica()
        hub: ListenerHub = replica.hub
        station, dot, kind = route_path(scope)[len(LISTEN_PREFIX):].rpartition(".")
        if not dot or kind not in PLAYLIST_TYPES and kind not in {fmt.value for fmt in StreamFormat}:
            await send_error(send, 404, "no such stream: /listen/{station}.mp3, .opus, .m3u or .pls")
            return
        if scope.get("method") == "OPTIONS":  # a page elsewhere asks before it sends Icy-MetaData
            await send_answer(send, 204, b"", "text/plain", PREFLIGHT_HEADERS)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await send_error(send, 405, "GET or HEAD", [(b"allow", b"GET, HEAD, OPTIONS")])
            return
        feed = hub.feed(station)
        if feed is None:
            await send_error(send, 404, f"unknown station {station[:64]!r}")
            return
        if kind in PLAYLIST_TYPES:
            await send_answer(send, 200, playlist(kind, feed.name, base_url(scope)), PLAYLIST_TYPES[kind])
            return
        await self.stream(replica, hub, feed, StreamFormat(kind), scope, receive, send)

    @staticmethod
    def refusal(replica, hub: ListenerHub) -> tuple[str, int] | None:
        """Why a new stream is refused now, and the Retry-After to send (None: it is let in)."""
        refusal = replica.lifecycle.refusal()
        if refusal is Refusal.FULL:
            hub.metrics.inc_websocket_errors(p.ErrorCode.SERVER_OVERLOAD.value)
        return None if refusal is None else (refusal.value, RETRY_AFTERS[refusal])

    async def stream(self, replica, hub: ListenerHub, feed: StationFeed, fmt: StreamFormat, scope, receive,
                     send) -> None:
        settings = http_stream_settings(hub.config)
        refused = self.refusal(replica, hub)
        # a HEAD request gets no audio: it does not wake the station's encoders
        compressed = scope.get("method") == "GET"
        if refused is None and not await feed.wait_for_audio(AUDIO_WAIT_SEC, compressed=compressed,
                                                             burst_chunks=settings.burst_chunks):
            refused = "the station has no audio yet", RETRY_AFTER_DRAIN_SEC
        # again after the wait: a drain may have begun, or other listeners taken the room, meanwhile
        refused = refused or self.refusal(replica, hub)
        if refused is not None:
            message, retry_after = refused
            await send_error(send, 503, message, [(b"retry-after", str(retry_after).encode())])
            return
        icy = fmt is StreamFormat.MP3 and dict(scope.get("headers") or ()).get(b"icy-metadata", b"").strip() == b"1"
        start = {"type": "http.response.start", "status": 200, "headers": self.stream_headers(hub, feed, fmt, icy)}
        if scope.get("method") == "HEAD":
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        session = HttpStreamSession(hub.new_http_listener_id(), feed.name, fmt, feed.ring,
                                    settings, time.time(), icy=icy, title=feed.stream_title)
        session.open(time.time())
        listener = HttpListener(session)
        hub.register_http(feed, listener)
        waits: set[asyncio.Task] = set()
        finish = False
        try:
            await send(start)
            found = find_http_body_transport(send) if hub.config.concurrency.enable_direct_writes else None
            if found is not None:
                transport, chunked = found
                listener.writer = BodyWriter(transport, chunked, hub.config.concurrency.send_backlog_max_bytes,
                                             send_buffer_bytes(hub.config.encoding, fmt))
            else:
                listener.sender = asyncio.create_task(self._send_loop(listener, send))
                waits.add(listener.sender)
            feed.start_http(listener, time.time())
            waits |= {asyncio.create_task(wait_for_disconnect(receive)), asyncio.create_task(listener.ended.wait())}
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finish = listener.ended.is_set() and not listener.dropped
        finally:
            # forget the listener first: Serve may cancel this request (it saw the disconnect too)
            hub.unregister_http(feed, listener)
            session.disconnect()
            for task in waits:
                task.cancel()
            report_failures(await asyncio.gather(*waits, return_exceptions=True), listener.listener_id, hub.metrics)
        if finish:  # the server ends the stream (a drain): the last chunk of the response
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:  # the listener went at the same time
                pass

    @staticmethod
    def stream_headers(hub: ListenerHub, feed: StationFeed, fmt: StreamFormat, icy: bool) -> list[tuple[bytes, bytes]]:
        kbps = bitrate_kbps(hub.config.encoding, fmt)
        headers = [(b"content-type", fmt.media_type.encode()), *SHARED_HEADERS, (b"connection", b"close"),
                   (b"icy-name", f"Auralis {feed.name}".encode()), (b"icy-br", str(kbps).encode())]
        if icy:
            headers.append((b"icy-metaint", str(http_stream_settings(hub.config).icy_metaint).encode()))
        return headers

    @staticmethod
    async def _send_loop(listener: HttpListener, send) -> None:
        """Where the socket is not reachable: send what the tick says is due, through the ASGI `send`."""
        session = listener.session
        while True:
            await listener.wake.wait()
            listener.wake.clear()
            pieces = session.take(time.time())
            if pieces:
                try:
                    await send({"type": "http.response.body", "body": b"".join(pieces), "more_body": True})
                except OSError:  # the listener went away mid-send
                    return


def route_path(scope: dict[str, Any]) -> str:
    """The request's path below the app's root path."""
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
