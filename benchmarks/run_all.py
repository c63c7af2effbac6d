"""`make bench`: every benchmark, each writing PerformanceBenchmark JSON under benchmarks/results/.

The live fan-out benchmark needs a running server (`make run`); it runs when one answers on
$AURALIS_BENCH_URL (default ws://127.0.0.1:8000) and is skipped otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*args: str) -> int:
    print("$", " ".join(args), flush=True)
    return subprocess.call([sys.executable, *args], cwd=HERE.parent)


def server_up(url: str) -> bool:
    http = url.replace("ws://", "http://").replace("wss://", "https://")
    try:
        with urllib.request.urlopen(f"{http}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def main() -> int:
    failures = 0
    failures += run(str(HERE / "bench_synth.py")) != 0
    failures += run("-m", "auralis_ray.cli", "soak", "--hours-equivalent", os.environ.get("AURALIS_SOAK_HOURS", "8"),
                    "--json-out", str(HERE / "results" / "soak.json")) != 0
    url = os.environ.get("AURALIS_BENCH_URL", "ws://127.0.0.1:8000")
    if server_up(url):
        failures += run(str(HERE / "bench_fanout.py"), url) != 0
    else:
        print(f"no server at {url}: skipping the fan-out benchmark (start one with `make run`)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
