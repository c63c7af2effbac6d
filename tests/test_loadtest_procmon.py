"""ProcessSet: which processes a load test measures, found by pattern or PID."""

import subprocess
import sys

import psutil
import pytest

from auralis_ray.tools.loadtest.procmon import ProcessSet
from waiting import wait_until

MARKER = "procmon-test-marker"


def _sleeper() -> subprocess.Popen:
    """A child whose command line carries MARKER (Popen returns once it has exec'd)."""
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(30)  # {MARKER}"])
    wait_until(lambda: MARKER in " ".join(psutil.Process(child.pid).cmdline()), 10, "the child's command line")
    return child


def test_snapshot_finds_processes_by_pattern_and_can_reuse_what_it_found():
    first = _sleeper()
    second = None
    try:
        measured = ProcessSet(patterns=[MARKER], exclude_own_family=False)  # the sleepers are our children
        assert [s.pid for s in measured.snapshot().values()] == [first.pid]
        second = _sleeper()
        assert [s.pid for s in measured.snapshot(rediscover=False).values()] == [first.pid]
        assert sorted(s.pid for s in measured.snapshot().values()) == sorted([first.pid, second.pid])
        assert all(s.rss > 0 for s in measured.snapshot(rediscover=False).values())
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_cpu_by_process_name_adds_up_to_the_whole():
    from auralis_ray.tools.loadtest.procmon import ProcSample, cpu_percent_between, cpu_percent_by_name

    def snap(*samples):
        return {s.key: s for s in samples}

    start = snap(ProcSample(1, 0.0, "ray::ServeRepli", 10.0, 1), ProcSample(2, 0.0, "ray::ServeRepli", 4.0, 1),
                 ProcSample(3, 0.0, "raylet", 1.0, 1), ProcSample(5, 0.0, "ray::ServeController", 0.25, 1))
    end = snap(ProcSample(1, 0.0, "ray::ServeRepli", 11.0, 1), ProcSample(2, 0.0, "ray::ServeRepli", 5.0, 1),
               ProcSample(3, 0.0, "raylet", 1.5, 1), ProcSample(4, 5.0, "haproxy", 0.25, 1),  # born inside
               ProcSample(5, 0.0, "ray::ServeController.listen_for_change", 0.5, 1))  # titled by its task
    by_name = cpu_percent_by_name(start, end, wall_s=10.0, start_time=1.0)
    assert by_name == {"haproxy": 2.5, "ray::ServeController": 2.5, "ray::ServeRepli": 20.0, "raylet": 5.0}
    assert sum(by_name.values()) == pytest.approx(cpu_percent_between(start, end, 10.0, 1.0))
