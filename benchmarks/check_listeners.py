"""Acceptance check of a running server: N listeners for S seconds, as PROTOCOL.md promises.

    python benchmarks/check_listeners.py [--url ws://127.0.0.1:8000] [--listeners 10] [--seconds 20]

Half JSON, half binary. Prints chunk counts, whether ids are strictly consecutive, whether every
common chunk is byte-identical across listeners, first-audio times, underruns of a 500 ms player
and the audio's RMS; exits 1 if any promise is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from listeners import listen, rms  # noqa: E402


async def check(url: str, listeners: int, seconds: float) -> bool:
    recs = await asyncio.gather(*(
        listen(f"{url}/ws/audio/check{i}?format={'binary' if i % 2 else 'json'}", seconds, f"check{i}")
        for i in range(listeners)))
    consecutive = all(r.order and r.order == list(range(r.order[0], r.order[0] + len(r.order))) for r in recs)
    common = set.intersection(*(set(r.chunks) for r in recs))
    identical = all(len({r.chunks[c] for r in recs}) == 1 for c in common)
    first_ms = [round((r.first_audio_at - r.opened_at) * 1000, 1) for r in recs if r.first_audio_at]
    underruns = [r.underruns(500) for r in recs]
    levels = [round(rms(b"".join(r.chunks.values())), 4) for r in recs]
    print("chunks per listener", [len(r.order) for r in recs])
    print("consecutive", consecutive, "| identical across listeners", identical, f"({len(common)} common chunks)")
    print("first audio ms", first_ms)
    print("underruns (500 ms player)", underruns)
    print("RMS", levels)
    return (consecutive and identical and len(first_ms) == listeners and max(first_ms) < 2000
            and not any(underruns) and min(levels) > 0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--listeners", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    ok = asyncio.run(check(args.url, args.listeners, args.seconds))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
