"""ListenerRegistryActor: the cluster-wide `client_id` registry (stream/registry.py) for the replicas.

A replica sends its claims and releases in batches (`update`) and keeps one `evictions` call
waiting, which returns as soon as another replica has claimed one of its ids: no call per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import ray

from ..stream.registry import Claim, ClientIdRegistry, Socket


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0, max_concurrency=1000)
class ListenerRegistryActor:
    """The cluster-wide client_id registry as a Ray actor (see the module docstring)."""

    def __init__(self, owner_timeout_sec: float = 120.0):
        self.registry = ClientIdRegistry(owner_timeout_sec)
        self.wakeups: dict[str, asyncio.Event] = {}

    def _wakeup(self, owner: str) -> asyncio.Event:
        event = self.wakeups.get(owner)
        if event is None:
            event = self.wakeups[owner] = asyncio.Event()
        return event

    async def update(self, owner: str, claims: list[Claim], releases: list[Socket]) -> None:
        now = time.time()
        for evicted in self.registry.update(owner, claims, releases, now):
            self._wakeup(evicted).set()
        for gone in self.registry.prune(now):
            self.wakeups.pop(gone, None)

    async def evictions(self, owner: str, wait_sec: float = 30.0) -> list[Socket]:
        """The sockets of `owner` that newer connections replaced; waits up to `wait_sec` for one."""
        event = self._wakeup(owner)
        taken = self.registry.take_evictions(owner, time.time())
        if not taken:
            event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_sec):
                    await event.wait()
            taken = self.registry.take_evictions(owner, time.time())
        return taken

    def holders(self) -> int:
        return len(self.registry.holders)
