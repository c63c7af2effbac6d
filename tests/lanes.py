"""`make test`: the suite in lanes side by side, each a pytest run over a set of markers.

The tests that check a stream against the clock run at normal priority, one after another (two of
them at once, each with its own Ray, miss real time on two cores). The rest check no timing and run
beside them: the operator's tests, which start `make run`, at normal priority too, the units and
the clean install at niceness 19, on the CPU the others leave. The first lane's output streams; each other
lane's follows when all are done. Every lane's outcome decides the exit status.

    python tests/lanes.py [pytest arguments for every lane]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOGS = REPO / "build"

PASSED = (0, 5)  # 5: no test of the lane was selected (`-k` given to every lane)
REALTIME = "(integration or browser or cluster or realtime) and not (operations or install)"
LANES = [  # (name, niceness, marker expression)
    ("real-time checks on the session's Ray and Serve and on the multi-node cluster", 0, REALTIME),
    # `ray start` gives its raylet 30 s to register, which a Ray started below the others on a busy
    # machine does not always get (at niceness 5, 10 and 19 it timed out): this lane starts `make run`
    # again and again, at normal priority
    ("`make run` as an operator runs it (stopped and started, Prometheus, the Ray dashboard)", 0, "operations"),
    ("units and the clean install", 19, f"not ({REALTIME}) and not operations"),
]


def command(niceness: int, markers: str, extra: list[str]) -> list[str]:
    pytest = [sys.executable, "-m", "pytest", "-q", "-ra", "--timeout=600", "-m", markers, *extra]
    return (["nice", "-n", str(niceness)] if niceness else []) + pytest


def main(extra: list[str]) -> int:
    LOGS.mkdir(exist_ok=True)
    (first_name, first_niceness, first_markers), *others = LANES
    started = []
    for index, (name, niceness, markers) in enumerate(others, start=1):
        log = LOGS / f"test-lane-{index}.log"
        lane = command(niceness, markers, ["-p", "no:cacheprovider", *extra])
        with log.open("w") as out:  # the child keeps its own handle
            started.append((name, log, subprocess.Popen(lane, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)))
    print(f"---- {first_name} ----", flush=True)
    failed = subprocess.call(command(first_niceness, first_markers, extra), cwd=REPO) not in PASSED
    for name, log, process in started:
        failed |= process.wait() not in PASSED
        print(f"---- {name} (run beside the first) ----\n{log.read_text()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
