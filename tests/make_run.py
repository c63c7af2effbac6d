"""`make run` as an operator starts it, on free ports, for the operations tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from auralis_ray.serve.launcher import LocalRun, RunState, STATE_FILE
from auralis_ray.serve.local import free_port
from waiting import wait_until

REPO = Path(__file__).resolve().parent.parent
# below the kernel's ephemeral range (32768+), where no outgoing connection takes a port between one
# run and the next, and below Serve's replica ports (30000+) and above Ray's worker ports (10002-19999)
def service_port() -> int:
    """A free port for a server that a run binds again after a restart (free_port's range lies where
    neither Ray nor the kernel picks ports of its own)."""
    return free_port()
CONTROL_TOKEN = "operations-test-token"


def small_serve_config(directory: Path, stations: int = 2) -> Path:
    """configs/serve.yaml with fewer stations and a short drain: the same shape, a lighter start."""
    config = yaml.safe_load((REPO / "configs" / "serve.yaml").read_text())
    args = config["applications"][0]["args"]
    args["server"]["stations"] = args["server"]["stations"][:stations]
    args.setdefault("monitoring", {})["metrics_collection_interval_sec"] = 1
    path = directory / "serve.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class MakeRun:
    """One `make run` process (make is PID 1's stand-in: signals go to it, as `docker stop` sends them)."""

    state_dir: Path
    serve_config: Path
    port: int = field(default_factory=service_port)
    metrics_port: int = field(default_factory=service_port)
    ray_port: int = field(default_factory=service_port)
    dashboard_port: int = field(default_factory=service_port)
    haproxy_metrics_port: int = field(default_factory=service_port)
    haproxy_stats_port: int = field(default_factory=service_port)
    ray_client_port: int = field(default_factory=service_port)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "AURALIS__"))}
        env.update({"PORT": str(self.port), "METRICS_PORT": str(self.metrics_port), "RAY_PORT": str(self.ray_port),
                    "DASHBOARD_PORT": str(self.dashboard_port), "RUN_STATE_DIR": str(self.state_dir),
                    "SERVE_CONFIG": str(self.serve_config), "AURALIS__SERVER__CONTROL_TOKEN": CONTROL_TOKEN,
                    # a test's ports: a `make run` of the developer's own may hold the fixed ones
                    "RAY_SERVE_HAPROXY_METRICS_PORT": str(self.haproxy_metrics_port),
                    "RAY_SERVE_HAPROXY_STATS_PORT": str(self.haproxy_stats_port),
                    "RAY_CLIENT_PORT": str(self.ray_client_port)})
        return env

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.state_dir / f"make-run-{time.time():.0f}.log"
        with self.log.open("w") as out:
            # a session of its own, as a terminal gives: the test's signals reach make alone
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "run"],
                cwd=REPO, env=self.environment(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def ready(self) -> bool:
        """The supervisor's banner (it prints it once its own system answers /readyz: a system an
        earlier run left on the same ports does not count), and /readyz."""
        if self.process.poll() is not None:
            raise AssertionError(f"make run exited ({self.process.returncode}):\n{self.output()[-3000:]}")
        if "Auralis is ready" not in self.output():
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 240) -> None:
        wait_until(self.ready, timeout, lambda: f"make run to answer /readyz:\n{self.output()[-3000:]}", poll=0.25)

    def signal(self, signum: int) -> None:
        """SIGINT as a terminal's Ctrl-C sends it, to the whole foreground group; any other signal to
        make alone, as `docker stop` or systemd sends SIGTERM to the main process."""
        if signum == signal.SIGINT:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)

    def kill_all_it_started(self) -> None:
        """SIGKILL make and the supervisor, as an impatient operator's `kill -9` or a container's end."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def wait_exit(self, timeout: float) -> float:
        """Seconds until make exits."""
        begun = time.monotonic()
        self.process.wait(timeout=timeout)
        return time.monotonic() - begun

    def run_state(self) -> RunState | None:
        path = self.state_dir / STATE_FILE
        return RunState(**json.loads(path.read_text())) if path.exists() else None

    def processes_of(self, state: RunState) -> list:
        return LocalRun.processes_of(state)


async def listen_until_closed(url: str, client_id: str, connected: asyncio.Event,
                              warned: threading.Event | None = None) -> list:
    """The control messages and the close code one binary listener sees (`warned` is set at its
    shutdown_warning)."""
    import websockets

    seen = []
    async with websockets.connect(f"{url}/ws/audio/{client_id}?format=binary", max_size=None) as socket:
        try:
            async for message in socket:
                if isinstance(message, str):
                    kind = json.loads(message)["type"]
                    if kind == "connection_established":
                        connected.set()
                    if kind == "shutdown_warning" and warned is not None:
                        warned.set()
                    if kind != "buffer_status":
                        seen.append(kind)
        except websockets.ConnectionClosed as closed:
            seen.append(closed.rcvd.code if closed.rcvd else None)
    return seen
