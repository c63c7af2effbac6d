"""One Ray + Serve instance for the whole test session (Ray start costs seconds and ~1 GB)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import pytest

CONTROL_TOKEN = "test-control-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    http_url: str
    ws_url: str
    control_token: str
    metrics_port: int
    stations: tuple[str, ...]

    def audio_url(self, client_id: str, **query) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{self.ws_url}/ws/audio/{client_id}" + (f"?{q}" if q else "")


def wait_ready(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout}s: {last}")


@pytest.fixture(scope="session")
def auralis_server():
    import ray
    from ray import serve

    from auralis_ray.serve.app import build_app

    # The ingress `make run` uses (see Makefile); must be set before Ray starts.
    os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
    os.environ.setdefault("RAY_SERVE_ENABLE_DIRECT_INGRESS", "1")
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")  # fast teardown
    os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_port()))
    os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_port()))
    port, metrics_port = free_port(), free_port()
    ray.init(
        address="local", num_cpus=4, include_dashboard=False, namespace="auralis", log_to_driver=False,
        _metrics_export_port=metrics_port, ignore_reinit_error=True,
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = build_app({
        "server": {
            "control_token": CONTROL_TOKEN,
            "port": port,
            "stations": [{"name": "default", "preset": "focus", "seed": 7},
                         {"name": "night", "preset": "sleep", "seed": 11}],
        },
        "concurrency": {"max_concurrent_clients": 60, "stalled_client_timeout_sec": 4.0},
        "monitoring": {"metrics_collection_interval_sec": 1, "prometheus_port": metrics_port},
    })
    serve.run(app, name="auralis", route_prefix="/")
    server = Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", CONTROL_TOKEN, metrics_port,
                    ("default", "night"))
    wait_ready(server.http_url)
    yield server
    serve.shutdown()
    ray.shutdown()
