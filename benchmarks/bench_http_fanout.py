"""Cost of a replica's own work per HTTP stream listener: one feed's tick over N MP3 listeners, no sockets.

"every tick" asks every listener on every tick whether a write is due; "wheel" is the feed's tick,
which visits only the listeners whose write the new chunk makes due (`WriteWheel`). Both write the
shared spans (`LiveSpans`) to transports that only count the writes, for each chunks-per-write.

    python benchmarks/bench_http_fanout.py [--listeners 1000] [--chunks 200] [--per-write 1 2 3 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auralis_ray.config import load_config  # noqa: E402
from auralis_ray.core_settings import feed_settings  # noqa: E402
from auralis_ray.monitor.metrics import PerformanceMetrics  # noqa: E402
from auralis_ray.serve.direct import BodyWriter  # noqa: E402
from auralis_ray.serve.http_stream import http_stream_settings  # noqa: E402
from auralis_ray.serve.hub import StationFeed  # noqa: E402
from auralis_ray.serve.listener import HttpListener  # noqa: E402
from auralis_ray.stream.codecs import CompressedForms  # noqa: E402
from auralis_ray.stream.http_listener import HttpStreamSession, StreamFormat  # noqa: E402
from auralis_ray.stream.pool import EncodedChunk  # noqa: E402
from auralis_ray.stream.protocol import CHUNK_SECONDS  # noqa: E402

MP3_BYTES_PER_CHUNK = 1600  # 128 kbit/s


class CountingTransport:
    """A transport whose writes cost nothing: only Auralis's own work is timed."""

    def __init__(self):
        self.writes = 0

    def write(self, data) -> None:
        self.writes += 1

    def writelines(self, pieces) -> None:
        self.writes += 1

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str, default=None):
        return default


def chunk(chunk_id: int) -> EncodedChunk:
    body = bytes(MP3_BYTES_PER_CHUNK)
    return EncodedChunk(chunk_id, chunk_id * CHUNK_SECONDS, b"", "{}", CompressedForms(b"", b"", body, body))


def run(listeners: int, chunks: int, per_write: int, visit_all: bool) -> tuple[float, float]:
    """µs per listener per chunk, and writes per listener per chunk."""
    config = load_config(concurrency={"http_chunks_per_write": per_write})
    feed = StationFeed("s", None, feed_settings(config), 1.0, PerformanceMetrics("ingress"))
    for chunk_id in range(20):
        feed.ring.write_chunk(chunk(chunk_id))
    settings = http_stream_settings(config)
    everyone = []
    for n in range(listeners):
        session = HttpStreamSession(f"http:{n}", "s", StreamFormat.MP3, feed.ring, settings, now=0.0)
        session.open(0.0)
        listener = HttpListener(session)
        listener.writer = BodyWriter(CountingTransport(), True, settings.backlog_max_bytes, 4096)
        feed.add_http(listener)
        everyone.append(listener)
    next_id = 20
    for phase in range(per_write):  # listeners join over a few ticks: every write phase is in use
        for listener in everyone[phase::per_write]:
            feed.start_http(listener, next_id * CHUNK_SECONDS)
        feed.ring.write_chunk(chunk(next_id))
        feed.tick(next_id * CHUNK_SECONDS)
        next_id += 1
    writes_before = sum(listener.writer.transport.writes for listener in everyone)
    started = time.perf_counter()
    for chunk_id in range(next_id, next_id + chunks):
        now = chunk_id * CHUNK_SECONDS
        feed.ring.write_chunk(chunk(chunk_id))
        if visit_all:
            for listener in everyone:
                listener.send_due(now, feed.http_spans)
        else:
            feed.tick(now)
    elapsed = time.perf_counter() - started
    writes = sum(listener.writer.transport.writes for listener in everyone) - writes_before
    return elapsed / chunks / listeners * 1e6, writes / chunks / listeners


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--per-write", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    for per_write in args.per_write:
        for label, visit_all in (("every tick", True), ("wheel", False)):
            us, writes = run(args.listeners, args.chunks, per_write, visit_all)
            print(f"{per_write} chunks per write, {label:>10}: {us:.2f} µs per listener per chunk "
                  f"({writes:.2f} writes per listener per chunk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
