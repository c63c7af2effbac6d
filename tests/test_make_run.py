"""`make run` stops on SIGTERM or Ctrl-C with its listeners warned, leaves nothing behind, and starts again
at once, also after a stop cut short by SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from make_run import REPO, MakeRun, listen_until_closed, small_serve_config

pytestmark = [pytest.mark.integration, pytest.mark.operations]

# how each of the five stops in a row ends: a signal, then (where given) SIGKILL to make and the
# supervisor that many seconds after the signal, or after the listener's shutdown_warning
STOPS = [
    ("SIGTERM", None, None),
    ("SIGTERM", 0.3, "warning"),  # cut short in the middle of the listeners' 1 s drain: Ray is left running
    ("SIGINT", None, None),  # Ctrl-C
    ("SIGTERM", 10.0, "signal"),  # `docker stop`: SIGKILL 10 s after SIGTERM, if still running
    ("SIGTERM", 0.3, "warning"),
]
STOP_LIMIT_S = 15


def stop(run: MakeRun, name: str, kill_after: float | None, counted_from: str | None,
         warned: threading.Event) -> tuple[float | None, bool]:
    """Send the signal; return (seconds until make exited, whether SIGKILL cut the stop short)."""
    run.signal(getattr(signal, name))
    if kill_after is None:
        return run.wait_exit(STOP_LIMIT_S), False
    if counted_from == "warning":
        assert warned.wait(STOP_LIMIT_S), "the listener got no shutdown_warning"
    try:
        return run.wait_exit(kill_after), False
    except subprocess.TimeoutExpired:
        run.kill_all_it_started()
        return None, True


@pytest.mark.timeout(900)
def test_stop_then_start_five_times_in_a_row(tmp_path):
    run = MakeRun(tmp_path / "build", small_serve_config(tmp_path))
    records = []
    for cycle, (name, kill_after, counted_from) in enumerate(STOPS):
        run.start()
        run.wait_ready()
        if cycle and records[-1]["cut_short"]:
            assert "left behind" in run.output(), run.output()[-2000:]
        state = run.run_state()
        assert state is not None and run.processes_of(state)

        async def listen_through_stop():
            connected, warned = asyncio.Event(), threading.Event()
            listener = asyncio.create_task(listen_until_closed(f"ws://127.0.0.1:{run.port}", f"op{cycle}", connected,
                                                               warned))
            await asyncio.wait_for(connected.wait(), 30)
            took, cut_short = await asyncio.to_thread(stop, run, name, kill_after, counted_from, warned)
            return took, cut_short, await asyncio.wait_for(listener, 30)

        took, cut_short, heard = asyncio.run(listen_through_stop())
        records.append({"signal": name, "kill_after_s": kill_after, "stopped_in_s": took, "cut_short": cut_short})
        assert heard[0] == "connection_established"
        if cut_short:
            # the stop was really cut short: Ray's processes are still there for the next start to end
            assert run.processes_of(state), "SIGKILL came after the stop had finished"
            continue
        assert took is not None and took < STOP_LIMIT_S, run.output()[-2000:]
        assert "shutdown_warning" in heard and heard[-1] == 1012, heard
        assert run.processes_of(state) == [], "make run left processes behind"
        assert run.run_state() is None
    assert [r["cut_short"] for r in records] == [False, True, False, False, True]
    # the last stop was cut short: `make stop` ends what it left
    state = run.run_state()
    assert state is not None and run.processes_of(state)
    done = subprocess.run(["make", "--no-print-directory", "stop"], cwd=REPO, env=run.environment(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert run.processes_of(state) == []
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "make_run_stops.json").write_text(json.dumps(records, indent=2))


def test_a_port_held_by_something_else_stops_the_start_with_one_line(tmp_path):
    run = MakeRun(tmp_path / "build", small_serve_config(tmp_path))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", run.port))
        squatter.listen()
        run.start()
        assert run.process.wait(timeout=60) != 0
    errors = [line for line in run.output().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.output()
    assert f"port {run.port}" in errors[0] and "listeners" in errors[0] and "pid" in errors[0]
    assert "Traceback" not in run.output()


def test_a_bad_setting_in_the_serve_config_stops_the_start_before_ray(tmp_path):
    config = small_serve_config(tmp_path)
    config.write_text(config.read_text().replace("preset: focus", "preset: loud"))
    run = MakeRun(tmp_path / "build", config)
    run.start()
    assert run.process.wait(timeout=60) != 0
    errors = [line for line in run.output().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.output()
    assert "server.stations.0" in errors[0] and "unknown preset 'loud'" in errors[0], errors[0]
    assert "Traceback" not in run.output() and "ray start" not in run.output()
    assert run.run_state() is None


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="the kernel schedules no autogroups")
def test_the_sessions_it_starts_keep_its_niceness():
    """`nice make run`: the session the supervisor starts (Ray's) gets its niceness."""
    started = subprocess.run(
        [sys.executable, "-c",
         "import os, subprocess; from auralis_ray.monitor.priority import share_niceness\n"
         "niceness = os.nice(3)\n"
         "child = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
         "share_niceness(child.pid)\n"
         "print(niceness, open(f'/proc/{child.pid}/autogroup').read().split()[-1]); child.kill()"],
        capture_output=True, text=True, timeout=30, cwd=REPO)
    assert started.returncode == 0, started.stderr
    own, session = map(int, started.stdout.split())
    assert own > 0 and session == own  # a new session's group starts at 0 unless given it
