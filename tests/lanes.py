"""`make test`: the suite in lanes, each a pytest run over a set of markers.

A test that checks a stream against the clock misses real time on two cores when another system
starts or runs beside it, so those tests run at normal priority and never two systems at once:
the checks on the session's Ray and Serve run beside the operator's tests (which start `make run`
again and again but check no timing), and the multi-node cluster, the heaviest system of all,
starts only when both are done. The units and the clean install run beside everything at
niceness 19, on the CPU the others leave. The real-time lanes' output streams; the others'
follows when all are done. Every lane's outcome decides the exit status.

    python tests/lanes.py [pytest arguments for every lane]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOGS = REPO / "build"

PASSED = (0, 5)  # 5: no test of the lane was selected (`-k` given to every lane)
SESSION = "(integration or browser or realtime) and not (cluster or operations or install)"
CLUSTER = "cluster and not (operations or install)"
OPERATIONS = "operations"
UNITS = f"not (({SESSION}) or ({CLUSTER}) or {OPERATIONS})"


def command(niceness: int, markers: str, extra: list[str]) -> list[str]:
    pytest = [sys.executable, "-m", "pytest", "-q", "-ra", "--durations=8", "--timeout=600", "-m", markers, *extra]
    return (["nice", "-n", str(niceness)] if niceness else []) + pytest


def start_logged(name: str, niceness: int, markers: str, extra: list[str]) -> tuple[str, Path, subprocess.Popen]:
    log = LOGS / f"test-lane-{name}.log"
    lane = command(niceness, markers, ["-p", "no:cacheprovider", *extra])
    with log.open("w") as out:  # the child keeps its own handle
        return name, log, subprocess.Popen(lane, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def run_streamed(title: str, markers: str, extra: list[str]) -> bool:
    print(f"---- {title} ----", flush=True)
    return subprocess.call(command(0, markers, extra), cwd=REPO) in PASSED


def main(extra: list[str]) -> int:
    LOGS.mkdir(exist_ok=True)
    # `ray start` gives its raylet 30 s to register, which a Ray started below the others on a busy
    # machine does not always get (at niceness 5, 10 and 19 it timed out): the operator's lane
    # starts `make run` at normal priority
    operations = start_logged("operations", 0, OPERATIONS, extra)
    units = start_logged("units", 19, UNITS, extra)
    passed = run_streamed("real-time checks on the session's Ray and Serve", SESSION, extra)
    passed &= operations[2].wait() in PASSED
    passed &= run_streamed("real-time checks on the multi-node cluster (after the operator's lane)", CLUSTER, extra)
    for name, log, process in (operations, units):
        passed &= process.wait() in PASSED
        print(f"---- the {name} lane (run beside the others) ----\n{log.read_text()}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
