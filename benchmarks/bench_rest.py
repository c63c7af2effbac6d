"""The whole system at rest: CPU and memory of a `make run` with no listener.

    python benchmarks/bench_rest.py [--settle 20] [--window 30] [--env KEY=VALUE ...] [--config FILE]

Starts `auralis run` (what `make run` runs) on free ports, waits until it is ready and `--settle`
seconds more, then measures every process of the run over `--window` seconds: CPU (100 % is one
core), RSS summed over the processes (which counts each shared page once per process that maps it),
PSS (each shared page split between its processes: what the run adds to the machine's memory), and
the same per kind of process. `--env` sets a variable for the run (one lever at a time). Writes
`benchmarks/results/rest_<UTC time>.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from auralis_ray.serve.local import free_port, wait_ready  # noqa: E402
from auralis_ray.tools.loadtest.procmon import process_kind  # noqa: E402


def run_processes(session_leaders: set[int]) -> list[psutil.Process]:
    """Every process of the run: those in the process sessions of the launcher and of its Ray (each
    leads a session of its own)."""
    sessions = set()
    for pid in session_leaders:
        try:
            sessions.add(os.getsid(pid))
        except OSError:
            sessions.add(pid)  # a leader that has exited: its id is the session's
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) in sessions and proc.pid != os.getpid():
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def sample(procs: list[psutil.Process]) -> dict[int, dict]:
    out = {}
    for proc in procs:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                memory = proc.memory_full_info()
                out[proc.pid] = {"kind": process_kind(proc.name()), "cpu_s": times.user + times.system,
                                 "rss": memory.rss, "pss": memory.pss, "uss": memory.uss}
        except psutil.Error:
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after ready before measuring")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the run (repeatable)")
    parser.add_argument("--config", default="configs/serve.yaml", help="the Serve config")
    parser.add_argument("--label", default="", help="a name for the record")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env)
    port, ray_port = free_port(), 20000 + os.getpid() % 9000
    ports = ["--port", str(port), "--serve-port", str(free_port()), "--metrics-port", str(free_port()),
             "--ray-port", str(ray_port), "--dashboard-port", str(free_port()),
             "--ray-client-port", str(free_port())]
    state_dir = tempfile.mkdtemp(prefix="auralis-rest-")
    env = {**os.environ, **extra, "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
           "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port())}
    launcher = subprocess.Popen([str(Path(sys.executable).parent / "auralis"), "run", *ports, "--config",
                                 args.config, "--state-dir", state_dir], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        started = time.time()
        wait_ready(url, timeout=240.0)
        ready_s = time.time() - started
        time.sleep(args.settle)
        record = json.loads((Path(state_dir) / "run.json").read_text())
        procs = run_processes({launcher.pid, record["ray_session"]})
        before, t0 = sample(procs), time.time()
        time.sleep(args.window)
        after, wall = sample(procs), time.time() - t0
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            launcher.kill()
    kinds: dict[str, dict] = defaultdict(lambda: {"processes": 0, "cpu_percent": 0.0, "rss_mb": 0.0, "pss_mb": 0.0})
    for pid, end in after.items():
        start = before.get(pid)
        cpu = 0.0 if start is None else (end["cpu_s"] - start["cpu_s"]) / wall * 100
        kind = kinds[end["kind"]]
        kind["processes"] += 1
        kind["cpu_percent"] += cpu
        kind["rss_mb"] += end["rss"] / 1e6
        kind["pss_mb"] += end["pss"] / 1e6
    result = {
        "label": args.label, "env": extra, "config": args.config,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "load_average_at_end": os.getloadavg(), "ready_after_s": round(ready_s, 1),
        "settle_s": args.settle, "window_s": round(wall, 1),
        "processes": len(after),
        "cpu_percent": round(sum(k["cpu_percent"] for k in kinds.values()), 2),
        "rss_mb": round(sum(k["rss_mb"] for k in kinds.values()), 1),
        "pss_mb": round(sum(k["pss_mb"] for k in kinds.values()), 1),
        "goals": {"cpu_percent_at_most": 15, "memory_mb_at_most": 1500},
        "by_kind": {name: {key: round(value, 2) for key, value in kind.items()}
                    for name, kind in sorted(kinds.items(), key=lambda item: -item[1]["cpu_percent"])},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"rest_{args.label + '_' if args.label else ''}{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'kind':42s} {'n':>3s} {'CPU %':>7s} {'RSS MB':>8s} {'PSS MB':>8s}")
    for name, kind in result["by_kind"].items():
        print(f"{name[:42]:42s} {kind['processes']:3d} {kind['cpu_percent']:7.2f} {kind['rss_mb']:8.1f} "
              f"{kind['pss_mb']:8.1f}")
    print(f"{'total':42s} {result['processes']:3d} {result['cpu_percent']:7.2f} {result['rss_mb']:8.1f} "
          f"{result['pss_mb']:8.1f}   ({path.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
