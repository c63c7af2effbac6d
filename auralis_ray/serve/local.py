"""A whole Auralis system on a fresh local Ray, in this process: for tests and benchmarks.

    python -m auralis_ray.serve.local --port 8100 [--metrics-port 8101] [--ingress MODE]
    python -m auralis_ray.serve.local --print-env [--ingress MODE]  # the mode's environment, as exports

MODE is one of `INGRESS_MODES` (default `haproxy`, a cluster node's). Prints `READY <url>` once
`/readyz` answers 200 and serves until SIGTERM/SIGINT. `make run` starts Ray and Serve itself
(serve/launcher.py, with the `shared` mode's environment); this exists so a test or benchmark can
start one system per ingress mode and measure it as one process tree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import signal
import socket
import sys
import time
import urllib.request


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Ray starts its workers at nice 15, so any ordinary process on the machine (a load generator, a
# browser, a build) would preempt the fan-out of audio; the bare baseline it is compared to runs at 0.
# Each process reports its metrics to Ray's export every 5 s (Ray's default is 10 s): the station and
# synthesis actors start seconds before the system is ready, and their series must be in the export
# soon after; every 2 s cost the dashboard agent, which takes in every report, about 1 % of a core
# more at rest. Serve's controller looks at its deployments every 0.5 s (Serve's default is 0.1 s,
# at which it took 3.9 % of a core at rest against 1.8 %; BENCHMARKS.md, "At rest").
RAY_ENV: dict[str, str] = {"RAY_worker_niceness": "0", "RAY_metrics_report_interval_ms": "5000",
                           "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5"}

# Ingress modes: the environment Ray Serve reads at start (see BENCHMARKS.md for the measurements).
INGRESS_MODES: dict[str, dict[str, str]] = {
    # HAProxy in front (a cluster node's door; `make run` uses `shared`): a thread per 4 cores but at least 2 (one thread relaying
    # two replicas' frames was the bottleneck at 1,000 listeners; Ray's default of 4 costs 20 % more
    # per listener on 2 cores), 64 KiB buffers (a 17.6 KB audio frame in one buffer), and each audio
    # path (/ws/audio/<client_id>) hashed to one replica, so a reconnecting client_id meets, and
    # replaces, its older socket (close 4000)
    "haproxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
                "RAY_SERVE_HAPROXY_NBTHREAD": str(min(_cores(), max(2, _cores() // 4))),
                "RAY_SERVE_HAPROXY_TUNE_BUFSIZE": "65536",
                "RAY_SERVE_HAPROXY_BALANCE_ALGORITHM": "uri path-only"},
    "haproxy-default": {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"},
    # replicas serve HTTP themselves on ports 30000+, Serve's proxy stays in front (an outside L4
    # load balancer can target the replica ports directly)
    "direct": {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"},
    "proxy": {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"},
    "grpc": {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
             "RAY_SERVE_PROXY_USE_GRPC": "1"},
}


# `make run`'s listener door: the replicas' own shared port (server.shared_port) and nothing else. Serve
# starts no proxy, no HAProxy and no per-replica server (the run's Serve config says `proxy_location:
# Disabled`): three processes and their CPU at rest. What that leaves out: Serve's count of a replica's
# open requests (autoscaling sees none, so a node keeps `min_replicas`) and the early notice of a
# replica's stop (its `__del__` drains the listeners instead; serve/replica.py).
INGRESS_MODES["shared"] = {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}


def serves_own_door(env: dict[str, str] | os._Environ) -> bool:
    """Whether Serve runs an HTTP door of its own under this environment (HAProxy or direct ingress)."""
    return env.get("RAY_SERVE_ENABLE_HA_PROXY") == "1" or env.get("RAY_SERVE_ENABLE_DIRECT_INGRESS") == "1"


def system_env(ingress: str = "haproxy") -> dict[str, str]:
    """What Ray and Serve read at start for a local system with this ingress (`make run` included)."""
    return {**RAY_ENV, **INGRESS_MODES[ingress]}


def shell_exports(env: dict[str, str], given: dict[str, str] | os._Environ = os.environ) -> str:
    """`export` lines for a shell's `eval`, leaving out what `given` already sets (so it wins)."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items() if key not in given)


# Ports handed out by free_port: above Ray's worker ports (10002-19999), below Serve's direct-ingress
# ports (30000 on) and the kernel's ephemeral ports (32768 on), so a port that Ray or the kernel picks
# for itself never takes one between the pick and its use
FREE_PORTS = range(20000, 30000)
_next_free_port = itertools.count(os.getpid() * 211)  # processes start apart, and walk on from there


def free_port() -> int:
    """A port on which nothing listens now, from FREE_PORTS."""
    for _ in range(len(FREE_PORTS)):
        port = FREE_PORTS[next(_next_free_port) % len(FREE_PORTS)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port from {FREE_PORTS.start} to {FREE_PORTS.stop - 1}")


def wait_ready(http_url: str, timeout: float = 90.0) -> None:
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{http_url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as error:
            last = error
        time.sleep(0.25)
    raise RuntimeError(f"server at {http_url} not ready after {timeout:.0f} s: {last!r}")


def start_local(port: int, metrics_port: int, overrides: dict | None = None, ingress: str = "haproxy",
                num_cpus: int = 4) -> str:
    """Start Ray (address="local") and Serve with Auralis; return the listeners' HTTP URL once ready.

    Ingress `shared`: the replicas accept on `port` themselves (server.shared_port), and Serve has no
    door of its own.
    """
    if ingress == "shared":
        overrides = {**(overrides or {})}
        overrides["server"] = {**overrides.get("server", {}), "shared_port": port}
        port = free_port()
    for key, value in system_env(ingress).items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
    os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_port()))
    os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_port()))
    import ray
    from ray import serve

    from .app import build_app

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, namespace="auralis",
             log_to_driver=False, _metrics_export_port=metrics_port)
    serve.start(http_options={"host": "127.0.0.1", "port": port, "request_timeout_s": None},
                proxy_location="EveryNode" if serves_own_door(os.environ) else "Disabled")
    serve.run(build_app(overrides or {}), name="auralis", route_prefix="/")
    # listeners' door: the replicas' shared port where one is configured, else Serve's HTTP port
    shared = (overrides or {}).get("server", {}).get("shared_port")
    url = f"http://127.0.0.1:{shared or port}"
    wait_ready(url)
    return url


def stop_local() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("--ingress", choices=sorted(INGRESS_MODES), default="haproxy")
    parser.add_argument("--config-json", default="{}", help="configuration overrides, as JSON")
    parser.add_argument("--print-env", action="store_true",
                        help="print the ingress mode's environment as shell exports (for a cluster node) and exit")
    args = parser.parse_args(argv)
    if args.print_env:
        print(shell_exports(system_env(args.ingress)), end="")
        return 0
    url = start_local(args.port, args.metrics_port or free_port(), json.loads(args.config_json), args.ingress)
    print(f"READY {url}", flush=True)

    def stop(*_):
        stop_local()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
