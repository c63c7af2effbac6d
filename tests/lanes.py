"""`make test`: the suite in lanes, each a pytest run over a set of markers.

A test that checks a stream against the clock misses real time on two cores when another system
starts beside it at the same priority, so those tests run at normal priority and never two of
their systems at once: first the checks on the session's Ray and Serve, then the multi-node
cluster, the heaviest system of all. Beside them, each in a process session of its own (Linux
schedules each session as one group), run the tests that start a Ray of their own but check no
timing (the operator's, which start `make run` again and again, and the metrics export) at
niceness 10, and the units with the clean install at 19; a group at niceness 10 weighs a tenth of
one at 0, so the cluster starts as soon as the session's checks are done, beside whatever of the
first is left. The real-time lanes' output streams; the others' follows when all are done.
Every lane's outcome decides the exit status.

    python tests/lanes.py [pytest arguments for every lane]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from auralis_ray.monitor.priority import share_niceness

REPO = Path(__file__).resolve().parent.parent
LOGS = REPO / "build"

PASSED = (0, 5)  # 5: no test of the lane was selected (`-k` given to every lane)
SESSION = "(integration or browser or realtime) and not (cluster or operations or own_ray or install)"
CLUSTER = "cluster and not (operations or install)"
OWN_RAY = "operations or own_ray"
UNITS = f"not (({SESSION}) or ({CLUSTER}) or {OWN_RAY})"


def command(niceness: int, markers: str, extra: list[str]) -> list[str]:
    pytest = [sys.executable, "-m", "pytest", "-q", "-ra", "--durations=8", "--timeout=600", "-m", markers, *extra]
    return (["nice", "-n", str(niceness)] if niceness else []) + pytest


def start_logged(name: str, niceness: int, markers: str, extra: list[str]) -> tuple[str, Path, subprocess.Popen]:
    """A lane in a process session of its own at `niceness`: Linux schedules each session as one
    group, so a lane that stays in this one would take the real-time lanes' group share whenever
    they wait, and a session it starts would weigh as much as all of them."""
    log = LOGS / f"test-lane-{name}.log"
    lane = command(niceness, markers, ["-p", "no:cacheprovider", *extra])
    with log.open("w") as out:  # the child keeps its own handle
        process = subprocess.Popen(lane, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    share_niceness(process.pid, niceness)
    return name, log, process


def run_streamed(title: str, markers: str, extra: list[str]) -> bool:
    print(f"---- {title} ----", flush=True)
    return subprocess.call(command(0, markers, extra), cwd=REPO) in PASSED


def main(extra: list[str]) -> int:
    LOGS.mkdir(exist_ok=True)
    # `ray start` gives its raylet 30 s to register: at niceness 5 to 19 it timed out while the units
    # shared the real-time lanes' group (always busy, it took their whole share); in a group of their
    # own they take only what the others leave
    own_ray = start_logged("own-Ray", 10, OWN_RAY, extra)
    units = start_logged("units", 19, UNITS, extra)
    passed = run_streamed("real-time checks on the session's Ray and Serve", SESSION, extra)
    passed &= run_streamed("real-time checks on the multi-node cluster", CLUSTER, extra)
    for name, log, process in (own_ray, units):
        passed &= process.wait() in PASSED
        print(f"---- the {name} lane (run beside the others) ----\n{log.read_text()}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
