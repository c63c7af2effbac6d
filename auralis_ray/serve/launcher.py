"""`make run`: Ray, Serve and Auralis on one machine, started and stopped as one.

    auralis run [--port 8000] [--serve-port 8001] [--metrics-port 8080] [--ray-port 6390]
    auralis stop

`auralis run` starts Ray (`ray start --head`) in a process session of its own, so the terminal's
Ctrl-C reaches only this supervisor, and hands Serve the config with `serve run --non-blocking`,
which exits once Serve has it: no driver process stays. Nor does Ray's log monitor, which would
forward the workers' logs to a driver (they stay in the session's log files and the dashboard's
Logs view). On a stop every replica's listeners get `shutdown_warning` and a 1012 close, then every
process of the Ray session (raylet, GCS, dashboard, workers, Serve's HAProxy where it runs) is
ended. The session is written to `<state_dir>/run.json` while it runs, so a later `auralis run` or
`auralis stop` ends what a stop cut short (SIGKILL) left behind. A port held by anything else, or a
bad Auralis setting in the Serve config, stops the start with one line that names it and the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psutil
import yaml

from ..config import ConfigError, load_config
from ..monitor.priority import share_niceness
from ..versions import UnsupportedVersion, check_versions
from .local import serves_own_door, system_env

STATE_FILE = "run.json"
RAY_TOKEN_FILE = "ray_auth_token"
DASHBOARD_PORT = 8265
# Ray Serve's HAProxy binds these on every node unless RAY_SERVE_HAPROXY_*_PORT say otherwise
HAPROXY_METRICS_PORT = 9101
HAPROXY_STATS_PORT = 8404
RAY_CLIENT_PORT = 10001
PROMETHEUS_PORT = 9090  # where `make monitor` serves Prometheus
SERVICE_DISCOVERY_FILE = "prom_metrics_service_discovery.json"  # Ray's head writes it in its session dir
RAY_ADDRESS_FILE = "ray_current_cluster"  # the address `ray.init()` dials when given none
STATUS_AFTER_S = 30.0  # not ready this long after the deploy: ask Serve whether it failed


class StartRefused(RuntimeError):
    """Something outside this run holds what the run needs; the message is one line with the fix."""


@dataclass(frozen=True)
class RunPorts:
    """The ports one local run binds, each named for what listens there."""

    listeners: int = 8000
    serve: int = 8001
    metrics: int = 8080
    ray: int = 6390
    dashboard: int = DASHBOARD_PORT
    haproxy_metrics: int = HAPROXY_METRICS_PORT
    haproxy_stats: int = HAPROXY_STATS_PORT
    ray_client: int = RAY_CLIENT_PORT

    def uses(self, serve_door: bool = True, haproxy: bool = True) -> list[tuple[int, str]]:
        """The ports the run binds and what listens on each: Serve's own HTTP door and HAProxy's ports
        only where the run has them."""
        ports = [
            (self.listeners, "the listeners' port ($PORT)"),
            (self.metrics, "Ray's metrics port ($METRICS_PORT)"),
            (self.ray, "Ray's GCS port ($RAY_PORT)"),
            (self.dashboard, "the Ray dashboard's port"),
            (self.ray_client, "Ray's client server port"),
        ]
        if serve_door:
            ports.append((self.serve, "Serve's HTTP port ($PORT+1)"))
        if haproxy:
            ports += [(self.haproxy_metrics, "Ray Serve HAProxy's metrics port"),
                      (self.haproxy_stats, "Ray Serve HAProxy's stats port")]
        return ports


@dataclass(frozen=True)
class RunState:
    """What a running `auralis run` started: the process session of its Ray."""

    ray_session: int  # the session id (setsid) every Ray process of this run carries
    started_at: float
    supervisor: int | None = None  # the `auralis run` that started it (pid), while it lives
    supervisor_started_at: float | None = None


def live_process(pid: int | None, started_at: float | None) -> psutil.Process | None:
    """The process `pid` if it is the one started at `started_at` and still runs (not a reused pid)."""
    if pid is None or started_at is None or pid == os.getpid():
        return None
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started_at) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except psutil.Error:
        pass
    return None


# ---- processes ------------------------------------------------------------------------------------


def session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def session_processes(session: int, since: float = 0.0) -> list[psutil.Process]:
    """The live processes of a process session created at or after `since` (a reused id is skipped)."""
    found = []
    for process in psutil.process_iter(["create_time", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE or process.pid == os.getpid():
            continue
        if session_of(process.pid) == session and process.info["create_time"] >= since - 1:
            found.append(process)
    return found


def end_processes(processes: list[psutil.Process], grace: float) -> None:
    """SIGTERM, then SIGKILL what is still there after `grace` seconds. A run's Ray keeps nothing that
    outlives it, and its GCS server does not end on SIGTERM, so a long grace only delays the stop."""
    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=2)


def holder_of(port: int) -> psutil.Process | None:
    """The process listening on a TCP port of this machine, if it can be seen."""
    try:
        connections = psutil.net_connections("tcp")
    except psutil.Error:
        return None
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            try:
                return psutil.Process(connection.pid) if connection.pid else None
            except psutil.Error:
                return None
    return None


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def describe(process: psutil.Process | None) -> str:
    if process is None:
        return "a process this user cannot see"
    try:
        return f"pid {process.pid} ({process.name()})"
    except psutil.Error:
        return f"pid {process.pid}"


# ---- the run --------------------------------------------------------------------------------------


class LocalRun:
    """One local Auralis system: start, wait for ready, stop; and clean-up of an earlier run."""

    def __init__(self, ports: RunPorts, config_path: Path, state_dir: Path, drain_seconds: float = 1.0,
                 stop_grace: float = 1.0):
        self.ports = ports
        self.config_path = config_path
        self.state_dir = state_dir
        self.drain_seconds = drain_seconds
        self.stop_grace = stop_grace
        self.control_token = os.environ.get("AURALIS__SERVER__CONTROL_TOKEN") or secrets.token_urlsafe(24)
        self.ray_start: subprocess.Popen | None = None
        self.gcs: psutil.Process | None = None
        self.state: RunState | None = None
        self.stopping = threading.Event()  # set by a signal: a start in progress gives up

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def ray_token_path(self) -> Path:
        return (self.state_dir / RAY_TOKEN_FILE).resolve()

    @property
    def ray_temp_dir(self) -> Path:
        """Ray's temp dir for this run alone (short: Ray's unix sockets live under it), so its session
        files, `session_latest` and service-discovery file are not shared with another Ray here."""
        return Path(tempfile.gettempdir()) / f"auralis-ray-{self.ports.ray}"

    @property
    def service_discovery_file(self) -> Path:
        """Where the run's Ray lists its metrics exports for Prometheus (`make monitor` reads it)."""
        return self.ray_temp_dir / "session_latest" / SERVICE_DISCOVERY_FILE

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.listeners}"

    # ---- before the start ----

    def recorded_state(self) -> RunState | None:
        """The run record of this checkout's latest run (None: none, or unreadable, which is removed)."""
        if not self.state_path.exists():
            return None
        try:  # a record of another version may hold more or fewer fields: the Ray session is needed
            record = json.loads(self.state_path.read_text())
            return RunState(**{field.name: record[field.name] for field in fields(RunState) if field.name in record})
        except (ValueError, TypeError):
            self.state_path.unlink(missing_ok=True)
            return None

    def running_supervisor(self) -> psutil.Process | None:
        """The `auralis run` of this checkout that is still running, if any."""
        state = self.recorded_state()
        return None if state is None else live_process(state.supervisor, state.supervisor_started_at)

    def end_leftovers(self) -> int:
        """End what an earlier run of this checkout left behind; return how many processes."""
        state = self.recorded_state()
        if state is None:
            return 0
        leftovers = self.processes_of(state)
        end_processes(leftovers, self.stop_grace)
        self.forget_cluster_address()
        self.state_path.unlink(missing_ok=True)
        return len(leftovers)

    @staticmethod
    def processes_of(state: RunState) -> list[psutil.Process]:
        """Every live process of a run: those of its Ray session."""
        return session_processes(state.ray_session, state.started_at)

    def check_ports(self) -> None:
        env = self.environment()
        needed = self.ports.uses(serve_door=serves_own_door(env), haproxy=env.get("RAY_SERVE_ENABLE_HA_PROXY") == "1")
        first_use: dict[int, str] = {}
        for port, what in needed:
            if port in first_use:
                raise StartRefused(f"port {port} is both {first_use[port]} and {what}: give each its own "
                                   "(make run PORT=... METRICS_PORT=... RAY_PORT=...)")
            first_use[port] = what
        for port, what in needed:
            if not port_is_free(port):
                holder = holder_of(port)
                raise StartRefused(
                    f"port {port} ({what}) is in use by {describe(holder)}, which is not in this checkout's "
                    f"run record ({self.state_path}): stop it (another Ray: `ray stop`; else "
                    f"`kill {holder.pid if holder else '<pid>'}`) or choose other ports "
                    "(make run PORT=... METRICS_PORT=... RAY_PORT=...)")

    # ---- start ----

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in system_env("shared").items():
            env.setdefault(key, value)
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.ray_token_path),
                    "AURALIS__SERVER__CONTROL_TOKEN": self.control_token,
                    "RAY_SERVE_HAPROXY_METRICS_PORT": str(self.ports.haproxy_metrics),
                    "RAY_SERVE_HAPROXY_STATS_PORT": str(self.ports.haproxy_stats)})
        # the dashboard's metrics views ask `make monitor`'s Prometheus
        env.setdefault("RAY_PROMETHEUS_HOST", f"http://127.0.0.1:{env.get('PROMETHEUS_PORT', PROMETHEUS_PORT)}")
        return env

    def write_serve_config(self) -> Path:
        """The run's Serve config, its Auralis arguments checked here first: a bad value stops the start
        with the setting named, before Ray starts."""
        config = yaml.safe_load(self.config_path.read_text())
        config.setdefault("http_options", {})["port"] = self.ports.serve
        if not serves_own_door(self.environment()):
            config["proxy_location"] = "Disabled"  # listeners come in through the shared port only
        for application in config.get("applications", []):
            args = application.setdefault("args", {})
            try:
                load_config(**args)
            except ConfigError as error:
                raise StartRefused(" ".join(f"{self.config_path}: {error}".split())) from None
            args.setdefault("server", {})["shared_port"] = self.ports.listeners
        path = self.state_dir / "serve.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def ensure_ray_token(self) -> None:
        if self.ray_token_path.exists() and self.ray_token_path.stat().st_size:
            return
        old = os.umask(0o077)
        try:
            self.ray_token_path.write_text(secrets.token_hex(32) + "\n")
        finally:
            os.umask(old)

    def start(self, ready_timeout: float = 180.0) -> None:
        check_versions()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        running = self.running_supervisor()
        if running is not None:
            raise StartRefused(f"Auralis of this checkout is running already (auralis run, pid {running.pid}): "
                               "stop it first (Ctrl-C there, or make stop)")
        ended = self.end_leftovers()
        if ended:
            print(f"ended {ended} processes an earlier run of this checkout left behind", flush=True)
        self.check_ports()
        self.ensure_ray_token()
        serve_config = self.write_serve_config()
        env = self.environment()
        bin_dir = Path(sys.executable).parent
        # a session of its own: the terminal's Ctrl-C reaches this supervisor, which stops it in order
        self.ray_start = subprocess.Popen(
            [str(bin_dir / "ray"), "start", "--head", f"--port={self.ports.ray}",
             f"--metrics-export-port={self.ports.metrics}", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={self.ports.dashboard}", f"--ray-client-server-port={self.ports.ray_client}",
             "--include-log-monitor=False", f"--temp-dir={self.ray_temp_dir}", "--disable-usage-stats"],
            env=env, start_new_session=True)
        share_niceness(self.ray_start.pid)
        self.save_state()
        if self.ray_start.wait() != 0:
            raise RuntimeError(f"`ray start` failed (exit {self.ray_start.returncode}); its output is above")
        self.gcs = self.gcs_server()
        if self.stopping.is_set():  # a signal while Ray started: the stop follows, no deploy
            return
        deploy = subprocess.run([str(bin_dir / "serve"), "run", "--non-blocking",
                                 f"--address=127.0.0.1:{self.ports.ray}", str(serve_config)], env=env)
        if deploy.returncode != 0:
            raise RuntimeError(f"`serve run` failed (exit {deploy.returncode}); its output is above")
        self.wait_ready(ready_timeout)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.dashboard}"

    def gcs_server(self) -> psutil.Process | None:
        """The run's GCS server: while it lives, the run's Ray does."""
        for process in self.processes_of(self.state):
            try:
                if process.name() == "gcs_server":
                    return process
            except psutil.Error:
                continue
        return None

    def ray_is_running(self) -> bool:
        try:
            return self.gcs is not None and self.gcs.is_running() and self.gcs.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:  # it ended between the two questions
            return False

    def application_status(self) -> tuple[str, str] | None:
        """The Auralis application's Serve status and message, from the dashboard (None: not known yet)."""
        request = urllib.request.Request(f"{self.dashboard_url}/api/serve/applications/", headers={
            "Authorization": f"Bearer {self.ray_token_path.read_text().strip()}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                applications = json.loads(answer.read()).get("applications") or {}
        except (OSError, ValueError):
            return None
        details = next(iter(applications.values()), None)  # the config holds one application
        return None if details is None else (details.get("status", ""), details.get("message", ""))

    def wait_ready(self, timeout: float) -> None:
        """Until `/readyz` answers 200; a stop request, Ray ending or a failed deployment ends the wait.
        Serve's status is asked only once the system is slower than usual to become ready: the
        dashboard's Serve module loads Serve's schemas (about 65 MB) on the first question."""
        deadline = time.monotonic() + timeout
        ask_serve_at = time.monotonic() + STATUS_AFTER_S
        while not self.stopping.wait(0.5):
            if not self.ray_is_running():
                raise RuntimeError(f"Ray's GCS server exited; Ray's logs are in {self.logs_dir}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() >= ask_serve_at:
                ask_serve_at = time.monotonic() + 2.0
                status = self.application_status()
                if status is not None and status[0] == "DEPLOY_FAILED":
                    raise RuntimeError(f"Serve could not deploy the application: {status[1]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.url}/readyz did not answer 200 within {timeout:.0f} s; "
                                   f"Ray's logs are in {self.logs_dir}")

    @property
    def logs_dir(self) -> Path:
        return self.ray_temp_dir / "session_latest" / "logs"

    def save_state(self) -> None:
        self.state = RunState(ray_session=self.ray_start.pid,
                              started_at=psutil.Process(self.ray_start.pid).create_time(),
                              supervisor=os.getpid(), supervisor_started_at=psutil.Process().create_time())
        self.state_path.write_text(json.dumps(asdict(self.state)))

    def banner(self) -> str:
        return "\n".join([
            "",
            f"Auralis is ready: {self.url}/ (web player), ws://127.0.0.1:{self.ports.listeners}/ws/audio/<client_id>",
            f"  station control token: {self.control_token}",
            f"  Ray metrics (Prometheus): http://127.0.0.1:{self.ports.metrics}/metrics  (make monitor: Prometheus on it)",
            f"  Ray dashboard: {self.dashboard_url}  (sign in with the token in {self.ray_token_path})",
            f"  logs: {self.logs_dir} (and the dashboard's Logs view)",
            "  Ctrl-C stops everything",
            "",
        ])

    # ---- stop ----

    def drain_period(self) -> float:
        """The stop's drain period: `drain_seconds`, at most the configured drain (longer is refused)."""
        try:
            config = yaml.safe_load(self.config_path.read_text())
            args = config["applications"][0].get("args", {})
            return min(self.drain_seconds, load_config(**args).concurrency.drain_timeout_sec)
        except (OSError, LookupError, TypeError, yaml.YAMLError, ConfigError):
            return self.drain_seconds

    def drain_listeners(self) -> int:
        """Every replica on this node sends its listeners `shutdown_warning`, then closes them (1012).

        A replica that takes a final drain closes its shared port at once, so the kernel hands the
        next request to a replica still accepting; the calls end when none accepts.
        """
        period = self.drain_period()
        body = json.dumps({"period": period, "final": True}).encode()
        drained = 0
        for _ in range(64):
            request = urllib.request.Request(f"{self.url}/api/admin/drain", data=body, method="POST", headers={
                "Authorization": f"Bearer {self.control_token}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=2) as answer:
                    json.loads(answer.read())
                    drained += 1
            except urllib.error.HTTPError:
                break  # a replica that is already draining refuses (1012 door) or answers an error
            except OSError:
                break  # no replica accepts any more
        if drained:
            time.sleep(period + 0.3)  # the warning's period, then the 1012 closes go out
        return drained

    def forget_cluster_address(self) -> None:
        """Remove Ray's note of the latest cluster if it names this run's GCS (as `ray stop` does), so a
        later `ray.init()` on this machine starts its own Ray instead of dialling a dead one."""
        for note in (Path(tempfile.gettempdir()) / "ray" / RAY_ADDRESS_FILE, self.ray_temp_dir / RAY_ADDRESS_FILE):
            try:
                if note.read_text().strip().endswith(f":{self.ports.ray}"):
                    note.unlink()
            except OSError:
                pass

    def stop(self) -> None:
        if self.ray_start is None:  # refused before Ray started: the record and Ray here are another run's
            return
        if self.ray_is_running():
            self.drain_listeners()
        if self.state is not None:
            end_processes(self.processes_of(self.state), self.stop_grace)
        self.forget_cluster_address()
        self.state_path.unlink(missing_ok=True)


# ---- command line ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)), help="the listeners' port")
    parser.add_argument("--serve-port", type=int, default=None, help="Serve's HTTP port (default: --port + 1)")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("METRICS_PORT", 8080)))
    parser.add_argument("--ray-port", type=int, default=int(os.environ.get("RAY_PORT", 6390)))
    parser.add_argument("--dashboard-port", type=int, default=DASHBOARD_PORT)
    parser.add_argument("--ray-client-port", type=int, default=RAY_CLIENT_PORT)
    parser.add_argument("--config", type=Path, default=Path("configs/serve.yaml"), help="the Serve config")
    parser.add_argument("--state-dir", type=Path, default=Path("build"),
                        help="where the run keeps its Ray token, Serve config and process record")


def ports_from(args: argparse.Namespace) -> RunPorts:
    environ = os.environ
    return RunPorts(listeners=args.port, serve=args.serve_port or args.port + 1, metrics=args.metrics_port,
                    ray=args.ray_port, dashboard=args.dashboard_port, ray_client=args.ray_client_port,
                    haproxy_metrics=int(environ.get("RAY_SERVE_HAPROXY_METRICS_PORT", HAPROXY_METRICS_PORT)),
                    haproxy_stats=int(environ.get("RAY_SERVE_HAPROXY_STATS_PORT", HAPROXY_STATS_PORT)))


def run(args: argparse.Namespace) -> int:
    local = LocalRun(ports_from(args), args.config, args.state_dir)
    stopping = local.stopping

    def request_stop(signum, _frame):
        if not stopping.is_set():
            print(f"\n{signal.Signals(signum).name}: stopping Auralis (listeners get shutdown_warning)...",
                  flush=True)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    try:
        try:
            local.start()
        except (UnsupportedVersion, StartRefused) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Exception as error:
            if not stopping.is_set():
                print(f"error: Auralis did not start: {error}", file=sys.stderr)
                code = 1
        else:
            if not stopping.is_set():
                print(local.banner(), flush=True)
            while not stopping.wait(0.5):
                if not local.ray_is_running():
                    print("error: Ray's GCS server exited; stopping", file=sys.stderr)
                    code = 1
                    break
    finally:
        begun = time.monotonic()
        local.stop()
        if local.ray_start is not None:
            print(f"stopped in {time.monotonic() - begun:.1f} s", flush=True)
    return code


# how long `auralis stop` gives a running `auralis run` to drain and stop before it ends what is left
SUPERVISOR_STOP_SEC = 30.0


def stop(args: argparse.Namespace) -> int:
    local = LocalRun(ports_from(args), args.config, args.state_dir)
    running = local.running_supervisor()
    if running is not None:  # it drains the listeners and stops in order, as on Ctrl-C
        print(f"stopping the running auralis run (pid {running.pid})", flush=True)
        running.terminate()
        try:
            running.wait(SUPERVISOR_STOP_SEC)
        except psutil.TimeoutExpired:
            print(f"it is still running after {SUPERVISOR_STOP_SEC:.0f} s: ending its processes", flush=True)
    ended = local.end_leftovers()
    if ended:
        print(f"ended {ended} processes of this checkout's run")
    elif running is None:
        print("nothing of this checkout's run is running")
    return 0


def write_prometheus_config(template: Path, local: LocalRun, out: Path) -> Path:
    """The Prometheus config for this run: the template's scrape of Ray's service-discovery file,
    pointed at this run's, and its alert rules by absolute path."""
    config = yaml.safe_load(template.read_text())
    config["rule_files"] = [str((template.parent / rules).resolve()) for rules in config.get("rule_files", [])]
    for job in config.get("scrape_configs", []):
        for discovery in job.get("file_sd_configs", []):
            discovery["files"] = [str(local.service_discovery_file)]
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def monitor(args: argparse.Namespace) -> int:
    """Debian's Prometheus on this checkout's run, in the foreground (Ctrl-C stops it)."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print("error: Prometheus is not installed: apt-get install prometheus (Debian's package)", file=sys.stderr)
        return 1
    local = LocalRun(ports_from(args), args.config, args.state_dir)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    config = write_prometheus_config(args.prometheus_config, local, args.state_dir / "prometheus.yml")
    listen = f"127.0.0.1:{args.prometheus_port}"
    print(f"Prometheus: http://{listen} (targets from {local.service_discovery_file}, alert rules loaded); "
          f"the Ray dashboard at http://127.0.0.1:{local.ports.dashboard} reads it", flush=True)
    os.execv(prometheus, [prometheus, f"--config.file={config}", f"--web.listen-address={listen}",
                          f"--storage.tsdb.path={args.state_dir / 'prometheus'}", "--log.level=warn"])


def add_monitor_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("--prometheus-port", type=int, default=PROMETHEUS_PORT)
    parser.add_argument("--prometheus-config", type=Path, default=Path("configs/prometheus/prometheus.yml"),
                        help="the template: Ray's service-discovery scrape and the alert rules")
