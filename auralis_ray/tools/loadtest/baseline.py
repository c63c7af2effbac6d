"""A bare `websockets` broadcast server: the baseline Auralis is compared to.

It follows the streaming part of docs/PROTOCOL.md and nothing else: `connection_established`,
an initial burst of up to one tier target of recent chunks, then one frame per 100 ms
to every listener. Chunk k is published at epoch + k × 0.1 s (an absolute schedule, so
delays never accumulate), stamped with that time, encoded once per format (and, for
JSON, per tier, because `current_tier` is in the message) and handed to
`websockets.broadcast`. The audio is a fixed 220 Hz tone (22 whole cycles per chunk,
so it loops seamlessly). Every station name gets the same stream.

    python -m auralis_ray.tools.loadtest.baseline --port 8765

prints `READY ws://HOST:PORT` once it listens (`--port 0` picks a free port).
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

from auralis_ray.tools.loadtest.frames import (
    CHUNK_MS,
    CHUNK_S,
    FORMATS,
    FRAMES_PER_CHUNK,
    SAMPLE_RATE,
    SAMPLES_PER_CHUNK,
    TIER_TARGET_MS,
    encode_audio_json,
    encode_binary,
)

SERVER_VERSION = "baseline-1"
SUBPROTOCOL = Subprotocol("auralis-v1")
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PATH_PREFIX = "/ws/audio/"
RING_CHUNKS = max(TIER_TARGET_MS.values()) // CHUNK_MS
MAX_WRITE_BUFFER = 64 * SAMPLES_PER_CHUNK * 2  # ~6.4 s of audio queued: the listener is dropped


def tone_chunk(freq_hz: float = 220.0, amplitude: float = 0.2) -> bytes:
    """One chunk of a stereo sine, int16 LE; 220 Hz fits 22 whole cycles in 100 ms."""
    t = np.arange(FRAMES_PER_CHUNK) / SAMPLE_RATE
    mono = np.round(np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype("<i2")
    return np.repeat(mono, 2).tobytes()


@dataclass(frozen=True)
class Chunk:
    """One published chunk, as the baseline holds it."""

    chunk_id: int
    timestamp: float
    binary: bytes


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
        self.ring: deque[Chunk] = deque(maxlen=RING_CHUNKS)
        self.groups: dict[tuple[str, str], set[ServerConnection]] = {
            (f, t): set() for f in FORMATS for t in TIER_TARGET_MS
        }
        self.epoch = 0.0

    # -- publishing ---------------------------------------------------------------------
    async def publish_forever(self) -> None:
        self.epoch = time.time()
        k = 0
        while True:
            ts = self.epoch + k * CHUNK_S
            delay = ts - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.publish(Chunk(k, ts, encode_binary(k, ts, self.pcm)))
            k += 1

    def publish(self, chunk: Chunk) -> None:
        self.ring.append(chunk)
        for (fmt, tier), conns in self.groups.items():
            if not conns:
                continue
            self._drop_stalled(conns)
            if fmt == "binary":
                broadcast(conns, chunk.binary)
            else:
                frame = encode_audio_json(chunk.chunk_id, chunk.timestamp, self.pcm_b64, buffer_depth=0, tier=tier)
                broadcast(conns, frame, text=True)

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
        if fmt not in FORMATS or tier not in TIER_TARGET_MS:
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
            if fmt == "binary":
                broadcast([ws], chunk.binary)
            else:
                frame = encode_audio_json(chunk.chunk_id, chunk.timestamp, self.pcm_b64, buffer_depth=depth, tier=tier)
                broadcast([ws], frame, text=True)
        self.groups[(fmt, tier)].add(ws)


def _select_subprotocol(connection: ServerConnection, offered: object) -> Subprotocol | None:
    """`auralis-v1` if the client offers it; no subprotocol is fine too."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None  # type: ignore[operator]


async def serve_baseline(host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    server = BaselineServer()
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
        publisher = asyncio.create_task(server.publish_forever())
        bound = ws_server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set_result(bound)
        else:
            print(f"READY ws://{host}:{bound}", flush=True)
        try:
            await publisher
        finally:
            publisher.cancel()


@contextlib.contextmanager
def baseline_subprocess(host: str = "127.0.0.1", start_timeout_s: float = 20.0) -> Iterator[tuple[str, int]]:
    """Start the baseline in its own process on a free port; yield (url, pid)."""
    package_root = str(Path(__file__).resolve().parents[3])  # importable even if not installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "auralis_ray.tools.loadtest.baseline", "--host", host, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
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
    args = parser.parse_args(argv)
    from auralis_ray.tools.loadtest.client import run_async

    with contextlib.suppress(KeyboardInterrupt):
        run_async(serve_baseline(args.host, args.port))


if __name__ == "__main__":
    main()
