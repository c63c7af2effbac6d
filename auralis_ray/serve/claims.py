"""A replica's side of the client_id registry: report claims and releases, close what is evicted.

Claims and releases go out in batches (at most one call per `batch_sec`, and only when something
changed); one `evictions` call always waits at the registry. The registry being away costs only
cross-replica duplicate detection (the replica's own check still works), never a listener's audio.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..stream.registry import Claim, Socket

log = logging.getLogger(__name__)

# an update the registry has not answered by then is sent again (a restarting actor holds calls)
UPDATE_TIMEOUT_SEC = 5.0


class ClaimSync:
    """Batches this replica's claims and releases to the registry and waits for its evictions."""

    def __init__(self, registry, owner: str, on_evict: Callable[[str, int], None], batch_sec: float = 0.05,
                 wait_sec: float = 30.0, retry_sec: float = 1.0, max_pending: int = 10_000):
        self.registry = registry
        self.owner = owner
        self.on_evict = on_evict
        self.batch_sec = batch_sec
        self.wait_sec = wait_sec
        self.retry_sec = retry_sec
        self.max_pending = max_pending
        self.claims: list[Claim] = []
        self.releases: list[Socket] = []
        self.pending = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.evicted = 0

    def claim(self, client_id: str, generation: int, connected_at: float) -> None:
        self.claims.append((client_id, generation, connected_at))
        self._keep_newest()

    def release(self, client_id: str, generation: int) -> None:
        self.releases.append((client_id, generation))
        self._keep_newest()

    def _keep_newest(self) -> None:
        """Hold at most the newest `max_pending` of each while the registry is away."""
        if len(self.claims) > 2 * self.max_pending:
            del self.claims[:-self.max_pending]
        if len(self.releases) > 2 * self.max_pending:
            del self.releases[:-self.max_pending]
        self.pending.set()

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._evict_loop())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def _send_loop(self) -> None:
        while True:
            await self.pending.wait()
            await asyncio.sleep(self.batch_sec)
            self.pending.clear()
            claims, releases = self.claims, self.releases
            self.claims, self.releases = [], []
            try:
                async with asyncio.timeout(UPDATE_TIMEOUT_SEC):
                    await self.registry.update.remote(self.owner, claims, releases)
            except Exception as error:
                log.warning("listener registry unavailable (%r); retrying", error)
                # kept for the retry (only the newest max_pending while it stays away)
                self.claims = (claims + self.claims)[-self.max_pending:]
                self.releases = (releases + self.releases)[-self.max_pending:]
                self.pending.set()
                await asyncio.sleep(self.retry_sec)

    async def _evict_loop(self) -> None:
        while True:
            try:
                evictions = await self.registry.evictions.remote(self.owner, self.wait_sec)
            except Exception as error:
                log.warning("listener registry unavailable (%r); retrying", error)
                await asyncio.sleep(self.retry_sec)
                continue
            for client_id, generation in evictions:
                self.evicted += 1
                self.on_evict(client_id, generation)
