"""Process-level metrics every long-lived actor and replica records: RSS, GPU memory, GC activity.

The actor calls `sample(now)` from its loop (cheap when not due); the sampler takes a
`MemorySnapshot` of the process and records `memory_usage_mb`, `gpu_memory_allocated_mb` and
`gc_collections_total` from it (as deltas of the snapshot's collection counts, so collections made by
`GCCollector` are counted too); its `MemoryMonitor` keeps the recent snapshots and feeds its
`MemoryGrowthTracker`, so the process can report its own growth slope.
"""

from __future__ import annotations

from typing import Callable

import psutil

from auralis_ray.config import PerformanceConfig
from auralis_ray.monitor.memory import MemoryMonitor, MemorySnapshot
from auralis_ray.monitor.metrics import PerformanceMetrics, get_metrics


class ProcessSampler:
    """Takes a `MemorySnapshot` of its process when due and records it (see the module docstring)."""

    def __init__(
        self,
        metrics: PerformanceMetrics,
        interval_sec: float,
        *,
        monitor: MemoryMonitor | None = None,
        snapshot: Callable[[float], MemorySnapshot] | None = None,
    ) -> None:
        if interval_sec <= 0:
            raise ValueError(f"interval_sec must be > 0, got {interval_sec}")
        self.metrics = metrics
        self.interval_sec = interval_sec
        self.monitor = monitor or MemoryMonitor()
        process = psutil.Process()
        self._snapshot = snapshot or (lambda now: MemorySnapshot.take("sample", now, process))
        self._gc_seen = [0, 0, 0]  # collections already reported, per generation
        self._last: float | None = None
        self.last_snapshot: MemorySnapshot | None = None

    @property
    def last_rss_mb(self) -> float | None:
        return None if self.last_snapshot is None else self.last_snapshot.rss_mb

    @classmethod
    def for_component(cls, component: str, config: PerformanceConfig) -> "ProcessSampler":
        """The sampler a long-lived actor builds at start: this process's metrics for `component`,
        sampled every `monitoring.metrics_collection_interval_sec`, into a `MemoryMonitor`
        configured from `memory` (snapshots kept, growth tracker, tracemalloc if enabled)."""
        return cls(
            get_metrics(component, config.monitoring),
            config.monitoring.metrics_collection_interval_sec,
            monitor=MemoryMonitor.from_config(config.memory),
        )

    def due(self, now: float) -> bool:
        return self._last is None or now - self._last >= self.interval_sec

    def sample(self, now: float, *, force: bool = False) -> bool:
        """Record if an interval has passed since the last sample (or `force`); return whether it did."""
        if not (force or self.due(now)):
            return False
        self._last = now
        snapshot = self.last_snapshot = self.monitor.add(self._snapshot(now))
        self.metrics.set_memory_usage(snapshot.rss_mb)
        self.metrics.set_gpu_memory(snapshot.gpu_mb)
        counts = (snapshot.gc_gen0_count, snapshot.gc_gen1_count, snapshot.gc_gen2_count)
        for generation, collections in enumerate(counts):
            delta = collections - self._gc_seen[generation]
            if delta > 0:
                self.metrics.inc_gc_collections(generation, delta)
                self._gc_seen[generation] = collections
        return True

