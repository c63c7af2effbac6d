"""A bare broadcast server, over `websockets` or plain HTTP streams: the baseline Auralis is compared to.

It follows the streaming part of docs/PROTOCOL.md and nothing else: `connection_established`,
an initial burst of up to one tier target of recent chunks, then one frame per 100 ms
to every listener. Chunk k is published at epoch + k × 0.1 s (an absolute schedule, so
delays never accumulate), stamped with that time, encoded once per format (and, for
JSON, per tier, because `current_tier` is in the message) and handed to
`websockets.broadcast`. The audio is a fixed 220 Hz tone (22 whole cycles per chunk,
so it loops seamlessly). Every station name gets the same stream.

The compressed forms come from the project's own encoders, once per chunk for every listener
(`CompressedStream`, one chunk ahead of its publish time): the `format=opus` frame, the Ogg pages
and the MP3 frames. At 128 kbit/s the tone's Opus packets take as many bytes as a station's music
(about 16 kB/s; libopus' constrained VBR spends the bitrate on it), so both servers send the same
amount per listener.

With `--http` it serves `GET /listen/{station}.mp3` and `.opus` instead (HTTP/1.1, `Connection:
close`, the body until the connection closes): the response head, a burst of one normal tier target
(for Ogg after the stream's header pages), then each chunk's bytes in one write per listener.

    python -m auralis_ray.tools.loadtest.baseline --port 8765 [--http]

prints `READY ws://HOST:PORT` (`READY http://HOST:PORT`) once it listens (`--port 0` picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from auralis_ray.stream.codecs.compressed import CodecSettings, CompressedStream
from auralis_ray.tools.loadtest.frames import (
    CHUNK_MS,
    CHUNK_S,
    FRAMES_PER_CHUNK,
    SAMPLE_RATE,
    SAMPLES_PER_CHUNK,
    TIER_TARGET_MS,
    WEBSOCKET_FORMATS,
    encode_audio_json,
    encode_binary,
)

SERVER_VERSION = "baseline-1"
SUBPROTOCOL = Subprotocol("auralis-v1")
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PATH_PREFIX = "/ws/audio/"
RING_CHUNKS = max(TIER_TARGET_MS.values()) // CHUNK_MS
MAX_WRITE_BUFFER = 64 * SAMPLES_PER_CHUNK * 2  # ~6.4 s of audio queued: the listener is dropped
HTTP_BURST_CHUNKS = TIER_TARGET_MS["normal"] // CHUNK_MS
HTTP_STREAM_PATH = re.compile(r"/listen/([A-Za-z0-9_-]{1,64})\.(mp3|opus)")
MAX_HTTP_WRITE_BUFFER = 64 * 1024  # ~4 s of a 128 kbit/s stream queued: the listener is dropped
MAX_REQUEST_HEAD = 8192
HTTP_CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg"}


def tone_chunk(freq_hz: float = 220.0, amplitude: float = 0.2) -> bytes:
    """One chunk of a stereo sine, int16 LE; 220 Hz fits 22 whole cycles in 100 ms."""
    t = np.arange(FRAMES_PER_CHUNK) / SAMPLE_RATE
    mono = np.round(np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype("<i2")
    return np.repeat(mono, 2).tobytes()


@dataclass(frozen=True)
class Chunk:
    """One published chunk, as the baseline holds it: each wire form, built once."""

    chunk_id: int
    timestamp: float
    binary: bytes
    opus: bytes  # the format=opus frame
    ogg_pages: bytes
    mp3: bytes

    def frame(self, fmt: str) -> bytes:
        """The chunk's binary WebSocket frame in `fmt` (binary or opus)."""
        return self.opus if fmt == "opus" else self.binary


@dataclass
class Listener:
    """One connected listener of the baseline: its connection, format and tier."""

    ws: ServerConnection
    format: str
    tier: str


class BaselineServer:
    """The bare broadcaster: one tone chunk every 100 ms to every listener, framed once per format."""

    def __init__(self, pcm: bytes | None = None) -> None:
        self.pcm = pcm or tone_chunk()
        self.pcm_b64 = base64.b64encode(self.pcm).decode("ascii")
        self.compressed = CompressedStream("baseline", 0, CodecSettings())
        self.ring: deque[Chunk] = deque(maxlen=RING_CHUNKS)
        self.groups: dict[tuple[str, str], set[ServerConnection]] = {
            (f, t): set() for f in WEBSOCKET_FORMATS for t in TIER_TARGET_MS
        }
        self.streams: dict[str, set[asyncio.Transport]] = {kind: set() for kind in HTTP_CONTENT_TYPES}
        self.ogg_header = b""
        self.epoch = 0.0

    # -- publishing ---------------------------------------------------------------------
    def build(self, chunk_id: int, timestamp: float) -> Chunk:
        """Chunk `chunk_id` in every form (the chunks must be built in order: the encoders run along them)."""
        forms = self.compressed.encode(chunk_id, timestamp, self.pcm)
        self.ogg_header = forms.ogg_header
        return Chunk(chunk_id, timestamp, encode_binary(chunk_id, timestamp, self.pcm), forms.opus_frame,
                     forms.ogg_pages, forms.mp3)

    async def publish_forever(self) -> None:
        self.epoch = time.time()
        k = 0
        chunk = self.build(k, self.epoch)
        while True:
            delay = chunk.timestamp - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.publish(chunk)
            k += 1
            chunk = self.build(k, self.epoch + k * CHUNK_S)  # encoded before it is due

    def publish(self, chunk: Chunk) -> None:
        self.ring.append(chunk)
        for (fmt, tier), conns in self.groups.items():
            if not conns:
                continue
            self._drop_stalled(conns)
            if fmt == "json":
                frame = encode_audio_json(chunk.chunk_id, chunk.timestamp, self.pcm_b64, buffer_depth=0, tier=tier)
                broadcast(conns, frame, text=True)
            else:
                broadcast(conns, chunk.frame(fmt))
        for kind, transports in self.streams.items():
            data = chunk.mp3 if kind == "mp3" else chunk.ogg_pages
            for transport in list(transports):
                if transport.get_write_buffer_size() > MAX_HTTP_WRITE_BUFFER:
                    transports.discard(transport)
                    transport.abort()
                elif data:
                    transport.write(data)

    @staticmethod
    def _drop_stalled(conns: set[ServerConnection]) -> None:
        for ws in [ws for ws in conns if ws.transport.get_write_buffer_size() > MAX_WRITE_BUFFER]:
            conns.discard(ws)
            ws.transport.abort()

    # -- listeners ------------------------------------------------------------------------
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path == "/healthz":
            return connection.respond(HTTPStatus.OK, '{"status": "ok"}\n')
        if not parts.path.startswith(PATH_PREFIX) or not CLIENT_ID.fullmatch(parts.path[len(PATH_PREFIX):]):
            return connection.respond(HTTPStatus.FORBIDDEN, "bad path or client_id\n")
        query = parse_qs(parts.query)
        fmt = query.get("format", ["json"])[0]
        tier = query.get("buffer_tier", ["normal"])[0]
        if fmt not in WEBSOCKET_FORMATS or tier not in TIER_TARGET_MS:
            return connection.respond(HTTPStatus.BAD_REQUEST, "bad format or buffer_tier\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        parts = urlsplit(ws.request.path)
        query = parse_qs(parts.query)
        client_id = parts.path[len(PATH_PREFIX):]
        listener = Listener(ws, query.get("format", ["json"])[0], query.get("buffer_tier", ["normal"])[0])
        station = query.get("station", ["default"])[0]
        self.join(listener, client_id, station)
        group = self.groups[(listener.format, listener.tier)]
        try:
            async for _ in ws:  # client messages are read and ignored
                pass
        finally:
            group.discard(ws)

    def join(self, listener: Listener, client_id: str, station: str) -> None:
        """Greeting, burst and subscription in one synchronous step: no chunk lost or doubled."""
        ws, fmt, tier = listener.ws, listener.format, listener.tier
        target_ms = TIER_TARGET_MS[tier]
        hello = {
            "type": "connection_established",
            "client_id": client_id,
            "station": station,
            "server_time": time.time(),
            "server_version": SERVER_VERSION,
            "buffer_config": {
                "initial_tier": tier,
                "target_buffer_ms": target_ms,
                "chunk_duration_ms": CHUNK_MS,
                "samples_per_chunk": SAMPLES_PER_CHUNK,
                "sample_rate": SAMPLE_RATE,
                "channels": 2,
                "format": fmt,
            },
        }
        broadcast([ws], json.dumps(hello))
        burst = list(self.ring)[-(target_ms // CHUNK_MS):]
        for depth, chunk in zip(range(len(burst) - 1, -1, -1), burst):
            if fmt == "json":
                frame = encode_audio_json(chunk.chunk_id, chunk.timestamp, self.pcm_b64, buffer_depth=depth, tier=tier)
                broadcast([ws], frame, text=True)
            else:
                broadcast([ws], chunk.frame(fmt))
        self.groups[(fmt, tier)].add(ws)

    # -- HTTP stream listeners ------------------------------------------------------------
    def answer(self, transport: asyncio.Transport, method: str, target: str) -> None:
        """Answer a request: a stream's head, then for a GET its burst, and the listener joins."""
        match = HTTP_STREAM_PATH.fullmatch(urlsplit(target).path)
        if method not in ("GET", "HEAD") or match is None:
            body = b'{"error": "not found"}\n'
            transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            transport.close()
            return
        kind = match.group(2)
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {HTTP_CONTENT_TYPES[kind]}\r\nCache-Control: no-store\r\n"
                f"Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n").encode()
        if method == "HEAD":
            transport.write(head)
            transport.close()
            return
        burst = list(self.ring)[-HTTP_BURST_CHUNKS:]
        if kind == "mp3":
            body = b"".join(chunk.mp3 for chunk in burst)
        else:
            body = self.ogg_header + b"".join(chunk.ogg_pages for chunk in burst)
        transport.write(head + body)
        self.streams[kind].add(transport)

    def leave(self, transport: asyncio.Transport) -> None:
        for transports in self.streams.values():
            transports.discard(transport)


class HttpStreamListener(asyncio.Protocol):
    """One HTTP connection to the baseline: it reads the request head, and the server answers it."""

    def __init__(self, server: BaselineServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return  # a listener says nothing after its request
        self.head += data
        if b"\r\n\r\n" not in self.head:
            if len(self.head) > MAX_REQUEST_HEAD:
                self.transport.abort()
            return
        self.answered = True
        try:
            method, target, _ = self.head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        except ValueError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.transport.close()
            return
        self.server.answer(self.transport, method, target)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.leave(self.transport)


def _select_subprotocol(connection: ServerConnection, offered: object) -> Subprotocol | None:
    """`auralis-v1` if the client offers it; no subprotocol is fine too."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None  # type: ignore[operator]


async def serve_baseline(host: str, port: int, ready: asyncio.Future[int] | None = None, http: bool = False) -> None:
    server = BaselineServer()
    if http:
        await _serve_http(server, host, port, ready)
        return
    async with serve(
        server.handler,
        host,
        port,
        process_request=server.process_request,
        compression=None,
        select_subprotocol=_select_subprotocol,
        ping_interval=20,
        max_size=4096,
    ) as ws_server:
        await _publish(server, f"ws://{host}", ws_server.sockets[0].getsockname()[1], ready)


async def _serve_http(server: BaselineServer, host: str, port: int, ready: asyncio.Future[int] | None) -> None:
    http_server = await asyncio.get_running_loop().create_server(lambda: HttpStreamListener(server), host, port)
    async with http_server:
        await _publish(server, f"http://{host}", http_server.sockets[0].getsockname()[1], ready)


async def _publish(server: BaselineServer, origin: str, bound: int, ready: asyncio.Future[int] | None) -> None:
    """Publish until cancelled, having told the port the server is bound to: in `ready`, or without it
    on stdout as `READY origin:port`."""
    publisher = asyncio.create_task(server.publish_forever())
    if ready is not None:
        ready.set_result(bound)
    else:
        print(f"READY {origin}:{bound}", flush=True)
    try:
        await publisher
    finally:
        publisher.cancel()


@contextlib.contextmanager
def baseline_subprocess(host: str = "127.0.0.1", start_timeout_s: float = 20.0,
                        http: bool = False) -> Iterator[tuple[str, int]]:
    """Start the baseline in its own process on a free port; yield (url, pid). `http`: it serves the
    HTTP streams (url http://...) instead of WebSockets (ws://...).

    The baseline runs in a process session of its own, as a server under test does (`make run`
    starts Ray's processes in one), so the niced listener processes yield to both alike."""
    package_root = str(Path(__file__).resolve().parents[3])  # importable even if not installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "auralis_ray.tools.loadtest.baseline", "--host", host, "--port", "0",
         *(["--http"] if http else [])],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + start_timeout_s
        line = ""
        assert proc.stdout is not None
        while time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("READY ") or not line:
                break
        if not line.startswith("READY "):
            raise RuntimeError(f"baseline did not start (exit code {proc.poll()})")
        yield line.split()[1], proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--http", action="store_true", help="serve GET /listen/{station}.mp3 and .opus instead")
    args = parser.parse_args(argv)
    from auralis_ray.tools.loadtest.client import run_async

    with contextlib.suppress(KeyboardInterrupt):
        run_async(serve_baseline(args.host, args.port, http=args.http))


if __name__ == "__main__":
    main()
