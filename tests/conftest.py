"""One Ray + Serve instance for the whole test session (Ray start costs seconds and ~1 GB)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from auralis_ray.serve.local import free_port, start_local, stop_local
from required_tools import require_tool

CONTROL_TOKEN = "test-control-token"


@dataclass
class Server:
    http_url: str
    ws_url: str
    control_token: str
    metrics_port: int
    stations: tuple[str, ...]
    overrides: dict

    def audio_url(self, client_id: str, **query) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{self.ws_url}/ws/audio/{client_id}" + (f"?{q}" if q else "")


def pytest_collection_modifyitems(items):
    """The browser tests run last: Chromium needs the most CPU headroom of any real-time check, and late
    in `make test` the lanes beside this one (tests/lanes.py) have the least left to do."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def auralis_server():
    """The system as `make run` serves it, two stations: listeners and HTTP through the replicas' shared
    port (HAProxy, Serve's own door, on another port)."""
    port, metrics_port = free_port(), free_port()
    overrides = {
        "server": {
            "control_token": CONTROL_TOKEN,
            "shared_port": port,  # kept for the rolling update's new version (test_integration_stream)
            "stations": [{"name": "default", "preset": "focus", "seed": 7},
                         {"name": "night", "preset": "sleep", "seed": 11}],
        },
        "concurrency": {"max_concurrent_clients": 60, "stalled_client_timeout_sec": 4.0},
        "monitoring": {"metrics_collection_interval_sec": 1},
    }
    http_url = start_local(port, metrics_port, overrides, ingress="shared")
    yield Server(http_url, http_url.replace("http://", "ws://"), CONTROL_TOKEN, metrics_port, ("default", "night"),
                 overrides)
    stop_local()


@pytest.fixture
def promtool() -> str:
    return require_tool("promtool", "apt-get install prometheus (Debian's package)")


@pytest.fixture
def ffmpeg() -> str:
    return require_tool("ffmpeg", "apt-get install ffmpeg (Debian's package)")


def pytest_terminal_summary(terminalreporter):
    """The run ends with every skipped test and why (a skip hides what was not checked)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"skipped: {len(skipped)}")
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.line(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}")
