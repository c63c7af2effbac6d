"""Process priority: work that is not live yields a shared CPU to the live fan-out.

Free of Ray, so the load generator (an outside client) uses it too.
"""

from __future__ import annotations

import os


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
