"""Process priority: work that is not live yields a shared CPU to the live fan-out.

Free of Ray, so the load generator (an outside client) uses it too.
"""

from __future__ import annotations

import os
from pathlib import Path


def lower_priority(niceness: int) -> int:
    """Run this process at `niceness` unless it already runs lower; return the niceness now in force.

    Linux keeps a niceness per thread and `setpriority(PRIO_PROCESS, 0)` changes only the caller,
    so every thread of the process is set (threads started later inherit it). Lowering priority
    needs no privilege; raising it would.
    """
    tasks = "/proc/self/task"
    threads = [int(t) for t in os.listdir(tasks)] if os.path.isdir(tasks) else [0]
    for tid in threads:
        try:
            if niceness > os.getpriority(os.PRIO_PROCESS, tid):
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except (ProcessLookupError, PermissionError):
            continue  # a thread that ended meanwhile
    return os.getpriority(os.PRIO_PROCESS, 0)


def share_niceness(session_leader: int, niceness: int | None = None) -> None:
    """Give the process session that `session_leader` leads this process's niceness (or `niceness`).

    Linux schedules each session as one group (autogroup) that starts at niceness 0 whatever its
    processes' own, so without this `nice make run` would leave Ray's processes at full priority.
    """
    if niceness is None:
        niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > 0:
        try:
            Path(f"/proc/{session_leader}/autogroup").write_text(str(niceness))
        except OSError:  # no autogroups here (another OS, or a kernel without them): nothing to share
            pass


def yield_to_other_sessions(niceness: int) -> int:
    """Lower this process's priority against every other process session, not only its own: start a
    session of its own, give that session's scheduling group `niceness`, then `lower_priority`.
    Return the niceness in force.

    Linux shares the CPU between sessions (autogroups) before it shares it between a session's
    processes, so a thread's niceness yields only to its own session: a server in a session of its
    own (Ray's processes under `make run`) would meet a niced client as an equal. A process that
    already leads a process group cannot start a session; it keeps its session's group as it is.
    """
    if niceness > 0:
        try:
            os.setsid()
        except OSError:
            pass  # a process-group leader: its session (the caller's) is not this process's to change
        else:
            share_niceness(os.getpid(), niceness)
    return lower_priority(niceness)
