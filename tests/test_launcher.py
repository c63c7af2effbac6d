"""`make run`'s supervisor without Ray: what it tells an operator whose deployment failed."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from auralis_ray.serve import launcher
from auralis_ray.serve.launcher import LocalRun, RunPorts
from make_run import service_port

TOKEN = "launcher-test-token"


class FakeServeApi(BaseHTTPRequestHandler):
    """The dashboard's Serve REST API answering with one application in `status`, behind Ray's token."""

    status = "DEPLOY_FAILED"

    def do_GET(self):
        if self.path != "/api/serve/applications/" or self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(404 if self.headers.get("Authorization") else 401)
            return
        body = json.dumps({"applications": {"auralis": {
            "status": self.status, "message": "ModuleNotFoundError: No module named 'auralis_gone'"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def dashboard():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeServeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def local_run(tmp_path, dashboard_port: int) -> LocalRun:
    run = LocalRun(RunPorts(listeners=service_port(), dashboard=dashboard_port), tmp_path / "serve.yaml", tmp_path)
    run.ray_token_path.write_text(TOKEN + "\n")
    run.gcs = psutil.Process()  # a process that lives: Ray is up, the listeners' port never answers
    return run


def test_a_failed_deployment_ends_the_wait_with_serves_message(tmp_path, dashboard, monkeypatch):
    monkeypatch.setattr(launcher, "STATUS_AFTER_S", 0.0)
    run = local_run(tmp_path, dashboard.server_address[1])
    with pytest.raises(RuntimeError, match="could not deploy the application: ModuleNotFoundError"):
        run.wait_ready(timeout=30)


def test_a_deployment_still_going_is_waited_for_until_the_timeout(tmp_path, dashboard, monkeypatch):
    monkeypatch.setattr(launcher, "STATUS_AFTER_S", 0.0)
    monkeypatch.setattr(FakeServeApi, "status", "DEPLOYING")
    run = local_run(tmp_path, dashboard.server_address[1])
    assert run.application_status() == ("DEPLOYING", "ModuleNotFoundError: No module named 'auralis_gone'")
    with pytest.raises(RuntimeError, match="did not answer 200 within 2 s"):
        run.wait_ready(timeout=2)


def test_ray_ending_ends_the_wait_and_names_its_logs(tmp_path, dashboard):
    run = local_run(tmp_path, dashboard.server_address[1])
    child = subprocess.Popen(["sleep", "30"])
    run.gcs = psutil.Process(child.pid)
    child.kill()
    child.wait()
    with pytest.raises(RuntimeError, match="GCS server exited; Ray's logs are in .*session_latest/logs"):
        run.wait_ready(timeout=30)


def test_a_run_record_with_more_fields_is_still_read_and_its_ray_session_ended(tmp_path):
    """A record an earlier version wrote (it named a driver too): the Ray session it names is ended."""
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    run = LocalRun(RunPorts(listeners=service_port()), tmp_path / "serve.yaml", tmp_path, stop_grace=1.0)
    run.state_path.write_text(json.dumps({"ray_session": sleeper.pid, "serve_pid": None,
                                          "started_at": psutil.Process(sleeper.pid).create_time()}))
    assert run.end_leftovers() == 1
    assert sleeper.wait(timeout=10) is not None and not run.state_path.exists()


def test_two_uses_of_one_port_are_refused_before_anything_starts(tmp_path):
    run = LocalRun(RunPorts(listeners=service_port(), metrics=9333, ray=9333), tmp_path / "serve.yaml", tmp_path)
    with pytest.raises(launcher.StartRefused, match="port 9333 is both Ray's metrics port .* and Ray's GCS port"):
        run.check_ports()


def test_the_stops_drain_takes_no_longer_than_the_configured_drain(tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("applications:\n  - args:\n      concurrency:\n        drain_timeout_sec: 0.5\n")
    assert LocalRun(RunPorts(), config, tmp_path, drain_seconds=1.0).drain_period() == 0.5
    config.write_text("applications:\n  - args: {}\n")
    assert LocalRun(RunPorts(), config, tmp_path, drain_seconds=1.0).drain_period() == 1.0


def record_run(run: LocalRun, ray_session: subprocess.Popen, supervisor: subprocess.Popen) -> None:
    run.state_path.write_text(json.dumps({
        "ray_session": ray_session.pid, "started_at": psutil.Process(ray_session.pid).create_time(),
        "supervisor": supervisor.pid, "supervisor_started_at": psutil.Process(supervisor.pid).create_time()}))


def test_a_second_start_beside_a_running_one_is_refused_and_ends_nothing(tmp_path, monkeypatch):
    ray_session = subprocess.Popen(["sleep", "30"], start_new_session=True)
    supervisor = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        run = LocalRun(RunPorts(listeners=service_port()), tmp_path / "serve.yaml", tmp_path)
        record_run(run, ray_session, supervisor)

        def went_on():
            raise AssertionError("the start went past the refusal")

        monkeypatch.setattr(run, "check_ports", went_on)
        with pytest.raises(launcher.StartRefused, match=f"running already .*pid {supervisor.pid}"):
            run.start()
        run.stop()  # as `auralis run` does after a refused start
        assert ray_session.poll() is None and supervisor.poll() is None, "the running system is left alone"
        assert run.running_supervisor().pid == supervisor.pid, "its record is kept"
    finally:
        for process in (ray_session, supervisor):
            process.kill()
            process.wait()


def test_stop_asks_a_running_supervisor_to_stop_then_ends_what_is_left(tmp_path, capsys):
    import argparse

    ray_session = subprocess.Popen(["sleep", "30"], start_new_session=True)
    supervisor = subprocess.Popen(["sleep", "30"], start_new_session=True)  # SIGTERM ends it, as it ends a run
    try:
        args = argparse.Namespace(port=service_port(), serve_port=None, metrics_port=8080, ray_port=6390,
                                  dashboard_port=8265, ray_client_port=10001, config=tmp_path / "serve.yaml",
                                  state_dir=tmp_path)
        record_run(LocalRun(launcher.ports_from(args), args.config, tmp_path), ray_session, supervisor)
        assert launcher.stop(args) == 0
        # the supervisor has a session of its own: only the signal to it ends it
        assert not psutil.pid_exists(supervisor.pid) or supervisor.poll() is not None
        assert ray_session.wait(timeout=10) is not None
        assert f"stopping the running auralis run (pid {supervisor.pid})" in capsys.readouterr().out
    finally:
        for process in (ray_session, supervisor):
            process.kill()
            process.wait()
