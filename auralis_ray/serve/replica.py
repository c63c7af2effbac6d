"""One ingress replica's parts, and the steps that start and stop them.

`start_replica` is what the deployment's constructor awaits: the GC policy, the backend actors
(found or created in a worker thread, so the replica's event loop never blocks on Ray), the hub of
listeners and its feeds, and the replica's lifecycle (shared port, shutdown watch, drains).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ray import serve

from ..actors.system import ensure_system, listener_registry, synthesis_handle
from ..config import PerformanceConfig
from ..monitor.gc_config import GCPauseTracker, ScheduledFullCollection
from ..monitor.metrics import get_metrics
from .hub import ListenerHub
from .lifecycle import ReplicaLifecycle
from .shared_port import SharedPort

# the longest a replica that learns late that it is being stopped drains its listeners
LATE_DRAIN_SEC = 2.0


@dataclass
class Replica:
    """What one ingress replica serves with: its listeners and feeds (`hub`), its start and end
    (`lifecycle`), who it is, and its garbage-collection policy."""

    config: PerformanceConfig
    hub: ListenerHub
    lifecycle: ReplicaLifecycle
    replica_id: str | None
    gc_pauses: GCPauseTracker
    full_gc: ScheduledFullCollection
    started_at: float
    device: dict | None = None  # the synthesis device, once the synthesis actor has said

    def gc_status(self) -> dict:
        """Collector pauses per generation, and the full collections the fan-out scheduled."""
        return {**self.gc_pauses.snapshot(), "scheduled_full_collections": self.full_gc.collections}

    async def synthesis_device(self) -> dict:
        """The synthesis actor's device (asked once, then remembered), or the error asking it."""
        if self.device is None:
            try:
                handle = await asyncio.to_thread(synthesis_handle, self.config)
                status = await asyncio.wait_for(handle.status.remote(), 5)
            except Exception as error:
                return {"error": repr(error)}
            self.device = status["device"]
        return self.device

    async def stop(self) -> None:
        """Drain what listeners are left, then stop. Where the shutdown watch drained them already (Serve's
        direct ingress) only late arrivals are left, and they get a short drain; without it this is
        the listeners' notice, and they get the whole drain period and the handover."""
        if self.hub.listeners_not_closing():
            period, handover = self.config.concurrency.drain_timeout_sec, self.config.concurrency.handover_wait_sec
            if self.lifecycle.watch_shutdown:
                period, handover = min(period, LATE_DRAIN_SEC), 0.0
            await self.lifecycle.drain("replica shutting down", period, final=True, handover_sec=handover)
        await self.lifecycle.stop()
        await self.hub.stop()


def tune_gc(config: PerformanceConfig) -> tuple[GCPauseTracker, ScheduledFullCollection]:
    """Time every collection, and run full collections on the fan-out's schedule.

    CPython's young-generation thresholds stay as they are here: the larger ones the synthesis and
    station actors use made single young collections of this heap last 200 ms.
    """
    pauses = GCPauseTracker().install()
    full_gc = ScheduledFullCollection(config.memory.ingress_full_gc_interval_sec)
    full_gc.apply()
    return pauses, full_gc


def connect_backend(config: PerformanceConfig) -> tuple[dict[str, Any], Any]:
    """The station actors by name and the client_id registry, found or created. Blocks on Ray: run it in
    a worker thread."""
    return ensure_system(config), listener_registry(config)


def current_replica_id() -> str | None:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside a Serve replica
        return None


def uses_direct_ingress() -> bool:
    """Whether Serve runs this replica's own HTTP server (whose /-/healthz tells when it is stopped)."""
    return os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS") == "1"


async def start_replica(config: PerformanceConfig, app: Any) -> Replica:
    """Build and start one replica; `app` is what its shared port serves where Serve's server is not
    found."""
    gc_pauses, full_gc = tune_gc(config)
    stations, registry = await asyncio.to_thread(connect_backend, config)
    replica_id = current_replica_id()
    metrics = get_metrics("ingress", config.monitoring)
    metrics.declare_known_series(station.name for station in config.server.stations)
    hub = ListenerHub(config, stations, metrics, full_gc=full_gc, registry=registry,
                      owner=replica_id or secrets.token_hex(8))
    server = config.server
    door = None if server.shared_port is None else SharedPort(server.shared_host, server.shared_port)
    direct_ingress = uses_direct_ingress()  # without it there is no Serve server to find or watch
    lifecycle = ReplicaLifecycle(hub, app, drain_timeout_sec=config.concurrency.drain_timeout_sec,
                                 handover_wait_sec=config.concurrency.handover_wait_sec, shared_door=door,
                                 watch_shutdown=direct_ingress,
                                 find_server_timeout_sec=30.0 if direct_ingress else 0.0)
    hub.start()
    lifecycle.start()
    return Replica(config, hub, lifecycle, replica_id, gc_pauses, full_gc, started_at=time.time())
