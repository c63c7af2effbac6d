"""Fan-out benchmark: Auralis against the bare `websockets` baseline, per listener count.

    python benchmarks/bench_fanout.py ws://127.0.0.1:8000 --listeners 100 500 --format binary

For every count it runs the load test against the server at URL, then the same load
against a fresh baseline (a subprocess on a free port), prints both reports side by
side and writes benchmarks/results/fanout_<format>_<count>_<UTC time>.json holding
both reports, the CPU-per-listener ratios and the settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout  # noqa: E402

from auralis_ray.tools.loadtest.cli import comparison_dict, run_with_baseline
from auralis_ray.tools.loadtest.config import LoadTestConfig
from auralis_ray.tools.loadtest.frames import FORMATS, TIER_TARGET_MS
from auralis_ray.tools.loadtest.report import format_side_by_side

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="running Auralis server, ws://HOST:PORT")
    parser.add_argument("--listeners", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--format", choices=FORMATS, default="binary")
    parser.add_argument("--tier", choices=tuple(TIER_TARGET_MS), default="normal")
    parser.add_argument("--station", default="default")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--ramp-rate", type=float, default=200.0)
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for n in args.listeners:
        config = LoadTestConfig(
            url=args.url, listeners=n, seconds=args.seconds, format=args.format, station=args.station,
            tier=args.tier, procs=min(args.procs, n), ramp_rate=args.ramp_rate,
            server_pids=tuple(args.server_pid), label="auralis",
        )
        print(f"fanout: {n} {args.format} listeners ...", file=sys.stderr, flush=True)
        target, base = run_with_baseline(config)
        print(format_side_by_side(target, base), flush=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = args.out_dir / f"fanout_{args.format}_{n}_{stamp}.json"
        record = comparison_dict(target, base)
        record["settings"] = {k: v for k, v in dataclasses.asdict(config).items() if k != "goals"}
        record["host"] = {"python": platform.python_version(), "machine": platform.machine(),
                          "cpus": os.cpu_count()}
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"fanout: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
