"""Ingress benchmark: the same listener load through each Ray Serve ingress mode and the bare baseline.

    python benchmarks/bench_ingress.py --listeners 200 --format binary --seconds 15 [--modes shared haproxy proxy grpc]

For each mode a fresh local Auralis system (`python -m auralis_ray.serve.local --ingress MODE`, one
station) is started and measured as one process tree (Ray's processes are its children), then the
bare `websockets` broadcaster runs the same load. Writes one JSON record per run under
benchmarks/results/ and prints a table of CPU per listener and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout  # noqa: E402

from auralis_ray.tools.loadtest.baseline import baseline_subprocess
from auralis_ray.tools.loadtest.client import run_loadtest
from auralis_ray.tools.loadtest.config import LoadTestConfig
from auralis_ray.tools.loadtest.report import LoadReport
from auralis_ray.serve.local import INGRESS_MODES, free_port

RESULTS = Path(__file__).resolve().parent / "results"
ONE_STATION = {"server": {"stations": [{"name": "default", "preset": "focus", "seed": 1}],
                          "control_token": "bench"},
               "concurrency": {"max_concurrent_clients": 5000}}


def start_system(mode: str, port: int, replicas: int = 1) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
    env.update(INGRESS_MODES[mode])
    proc = subprocess.Popen(
        [sys.executable, "-m", "auralis_ray.serve.local", "--port", str(port), "--ingress", mode,
         "--config-json", json.dumps({**ONE_STATION, "server": {**ONE_STATION["server"], "ingress_replicas": replicas}})],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("READY"):
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{mode}: the system did not start")


def replica_port(start: int = 30000, end: int = 30050) -> int:
    """Direct ingress: the port the replica itself serves on (allocated from 30000 up)."""
    import urllib.request

    for port in range(start, end):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return port
        except OSError:
            continue
    raise RuntimeError("no replica answered on the direct-ingress ports")


def stop_system(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def row(label: str, report: LoadReport, base: LoadReport | None) -> str:
    cpu = report.server_cpu_marginal_percent_per_listener
    ratio = (cpu / base.server_cpu_marginal_percent_per_listener
             if base and cpu is not None and base.server_cpu_marginal_percent_per_listener else None)
    return (f"| {label} | {report.listeners_connected}/{report.listeners_requested} | "
            f"{report.server_cpu_percent_per_listener:.4f} | {cpu:.4f} | "
            f"{'' if ratio is None else f'{ratio:.2f}x'} | {report.lateness_ms.p99:.1f} | "
            f"{100 * (report.lateness_within_50ms or 0):.3f} % | {report.first_audio_ms.p99:.1f} | "
            f"{report.underruns} | {report.unannounced_gaps} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", choices=sorted(INGRESS_MODES), default=["shared", "haproxy", "direct", "proxy", "grpc"])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--format", choices=("json", "binary"), default="binary")
    parser.add_argument("--seconds", type=float, default=15.0)
    # one generator process: at 1,000 listeners it needs a third of a core, and a second process only
    # adds another contender for the two cores at each tick (measured: 99.2 % against 95-97 % within
    # 50 ms through HAProxy, BENCHMARKS.md)
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--nice", type=int, default=10, help="load generator priority (see `auralis loadtest --nice`)")
    parser.add_argument("--replicas", type=int, default=1, help="ingress replicas (haproxy balances them)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the idle server is measured")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base_config = LoadTestConfig(listeners=args.listeners, seconds=args.seconds, format=args.format,
                                 procs=args.procs, nice=args.nice, idle_s=args.idle, settle_s=2.0)
    reports: dict[str, LoadReport] = {}
    for mode in args.modes:
        port = free_port()
        proc = start_system(mode, port, args.replicas)
        try:
            time.sleep(5)  # let the look-ahead fill before the idle measurement
            target = replica_port() if mode == "direct" else port  # direct: straight to the replica
            reports[mode] = run_loadtest(dataclasses.replace(
                base_config, url=f"ws://127.0.0.1:{target}", server_pids=(proc.pid,), label=mode))
        finally:
            stop_system(proc)
    with baseline_subprocess() as (url, pid):
        base = run_loadtest(dataclasses.replace(base_config, url=url, server_pids=(pid,), label="baseline"))
    print(f"\n{args.listeners} {args.format} listeners, {args.seconds:.0f} s window, load generator with "
          f"{args.procs} processes, {os.cpu_count()} cores\n")
    print("| ingress | connected | CPU %/listener | marginal CPU %/listener | vs baseline | lateness p99 ms "
          "| within 50 ms | first audio p99 ms | underruns | gaps |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, report in reports.items():
        print(row(mode, report, base))
    print(row("bare websockets", base, None))
    out = RESULTS / f"ingress_{args.format}_{args.listeners}_{stamp}.json"
    out.write_text(json.dumps({"settings": vars(args), "baseline": base.to_dict(),
                               **{m: r.to_dict() for m, r in reports.items()}}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
