"""ProcessSet: which processes a load test measures, found by pattern or PID."""

import subprocess
import sys
import time

from auralis_ray.loadtest.procmon import ProcessSet

MARKER = "procmon-test-marker"


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(30)  # {MARKER}"])


def test_snapshot_finds_processes_by_pattern_and_can_reuse_what_it_found():
    first = _sleeper()
    second = None
    try:
        time.sleep(0.3)
        measured = ProcessSet(patterns=[MARKER], exclude_own_family=False)  # the sleepers are our children
        assert [s.pid for s in measured.snapshot().values()] == [first.pid]
        second = _sleeper()
        time.sleep(0.3)
        assert [s.pid for s in measured.snapshot(rediscover=False).values()] == [first.pid]
        assert sorted(s.pid for s in measured.snapshot().values()) == sorted([first.pid, second.pid])
        assert all(s.rss > 0 for s in measured.snapshot(rediscover=False).values())
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()
