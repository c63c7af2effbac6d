"""Cost of Auralis's own per-listener work: N sessions fed one chunk per tick, no sockets.

"queued" goes through each listener's outbox (pump + take_frames), "live" takes the common tick's
one-step path (`ClientSession.take_live`) the replica's fan-out uses, falling back to the outbox.

    python benchmarks/bench_core.py [--listeners 1000] [--chunks 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auralis_ray.config import load_config  # noqa: E402
from auralis_ray.core_settings import session_settings  # noqa: E402
from auralis_ray.stream.broadcast import BroadcastRingBuffer  # noqa: E402
from auralis_ray.stream.client import ClientSession  # noqa: E402
from auralis_ray.stream.pool import AudioChunkPool  # noqa: E402
from auralis_ray.stream.protocol import CHUNK_SECONDS, SAMPLES_PER_CHUNK  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=100)
    args = parser.parse_args()
    settings = session_settings(load_config())
    ring, pool = BroadcastRingBuffer(300, 5), AudioChunkPool()
    pcm = np.zeros(SAMPLES_PER_CHUNK, dtype="<i2").tobytes()
    for cid in range(20):
        ring.write_chunk(pool.encode_chunk(cid, cid * CHUNK_SECONDS, pcm))
    sessions = []
    for i in range(args.listeners):
        s = ClientSession(client_id=f"c{i}", station="s", fmt="binary" if i % 2 else "json", ring=ring,
                          settings=settings, now=2.0, server_version="bench")
        s.open(2.0)
        s.pump(2.0)
        s.take_frames(2.0)
        sessions.append(s)
    first = 20
    for path in ("queued", "live"):
        started = time.perf_counter()
        for cid in range(first, first + args.chunks):
            now = cid * CHUNK_SECONDS
            ring.write_chunk(pool.encode_chunk(cid, now, pcm))
            for s in sessions:
                if s.status_due(now):
                    s.queue_status(now)
                if path == "live" and s.take_live(now) is not None:
                    continue
                if s.pump(now):
                    s.sent(s.take_frames(now, wire=True))
        first += args.chunks
        per = (time.perf_counter() - started) / args.chunks / args.listeners
        print(f"{path:>6}: {per * 1e6:.2f} µs per listener per chunk; {per * 10 * args.listeners * 100:.1f} % "
              f"of a core for {args.listeners} listeners at 10 chunks/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
