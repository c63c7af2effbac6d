"""CPU and memory of a set of processes over a time window, measured with psutil.

Which processes: the given PIDs and all their descendants, or else every process whose
command line matches one of the patterns (by default Ray's and Serve's), never the load
generator itself, its descendants (workers, the baseline it started) or its ancestors.

CPU% is (user+system CPU seconds spent in the window) / (window wall seconds) × 100,
so 100 % is one full core. Processes are looked up again at the end of the window, so
a process that started inside the window counts from zero; one that exited inside the
window is lost (psutil cannot read a dead process).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One process's cumulative CPU time and RSS at one moment."""

    pid: int
    create_time: float
    name: str
    cpu_s: float  # user + system, cumulative
    rss: int  # bytes

    @property
    def key(self) -> tuple[int, float]:
        return (self.pid, self.create_time)


Snapshot = dict[tuple[int, float], ProcSample]


def cpu_percent_between(start: Snapshot, end: Snapshot, wall_s: float, start_time: float) -> float:
    """CPU% of the processes in `end` over the wall time since `start` (pure)."""
    if wall_s <= 0:
        raise ValueError("wall_s must be positive")
    cpu = 0.0
    for key, sample in end.items():
        before = start.get(key)
        if before is not None:
            cpu += max(0.0, sample.cpu_s - before.cpu_s)
        elif sample.create_time >= start_time:
            cpu += sample.cpu_s  # born inside the window
    return cpu / wall_s * 100.0


def process_kind(name: str) -> str:
    """A process's name without the task it runs: Ray titles a worker `ray::Class.method` while busy."""
    return name.split(".", 1)[0] if name.startswith("ray::") else name


def cpu_percent_by_name(start: Snapshot, end: Snapshot, wall_s: float, start_time: float) -> dict[str, float]:
    """`cpu_percent_between` per kind of process (`process_kind` of its name at the end)."""
    kinds = {process_kind(sample.name) for sample in end.values()}
    return {kind: cpu_percent_between(start, {k: v for k, v in end.items() if process_kind(v.name) == kind},
                                      wall_s, start_time)
            for kind in sorted(kinds)}


def total_rss(snapshot: Snapshot) -> int:
    return sum(s.rss for s in snapshot.values())


def own_family(extra_excluded: Iterable[int] = ()) -> set[int]:
    """This process, its ancestors and descendants: never measured as the server."""
    me = psutil.Process()
    pids = {me.pid, *extra_excluded}
    pids.update(p.pid for p in me.parents())
    pids.update(p.pid for p in me.children(recursive=True))
    return pids


class ProcessSet:
    """Finds the measured processes again at every snapshot."""

    def __init__(
        self,
        pids: Iterable[int] = (),
        patterns: Iterable[str] = (),
        *,
        with_children: bool = True,
        exclude_own_family: bool = True,
    ) -> None:
        self.pids = tuple(pids)
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
        self.with_children = with_children
        self.exclude_own_family = exclude_own_family
        self._known: list[psutil.Process] = []

    def processes(self) -> list[psutil.Process]:
        excluded = own_family() if self.exclude_own_family else set()
        found: dict[int, psutil.Process] = {}
        if self.pids:
            for pid in self.pids:
                try:
                    proc = psutil.Process(pid)
                    found[pid] = proc
                    if self.with_children:
                        found.update((c.pid, c) for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
            # given PIDs and their trees are measured even when we started them (a baseline, a
            # benchmarked system): the generator's own workers are never in those trees
            return list(found.values())
        if self.pattern is None:
            return []
        for proc in psutil.process_iter(["cmdline"]):
            if proc.pid in excluded:
                continue
            cmdline = " ".join(proc.info.get("cmdline") or ())
            if cmdline and self.pattern.search(cmdline):
                found[proc.pid] = proc
        return list(found.values())

    def snapshot(self, rediscover: bool = True) -> Snapshot:
        """CPU times and RSS of the measured processes. `rediscover=False` reuses the processes found
        by the last snapshot: a search walks every process on the machine (~15 ms of CPU here), which
        in the middle of a measurement would compete with the server being measured."""
        if rediscover or not self._known:
            self._known = self.processes()
        snap: Snapshot = {}
        for proc in self._known:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    sample = ProcSample(
                        pid=proc.pid,
                        create_time=proc.create_time(),
                        name=proc.name(),
                        cpu_s=times.user + times.system,
                        rss=proc.memory_info().rss,
                    )
            except psutil.Error:
                continue
            snap[sample.key] = sample
        return snap


def self_and_workers(worker_pids: Iterable[int]) -> ProcessSet:
    """The load generator: this process and its worker processes (not the baseline)."""
    return ProcessSet(pids=(os.getpid(), *worker_pids), with_children=False, exclude_own_family=False)
