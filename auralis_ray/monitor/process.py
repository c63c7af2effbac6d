"""Process-level metrics every long-lived actor and replica records: RSS, GPU memory, GC activity.

The actor calls `sample(now)` from its loop (cheap when not due); the sampler records
`memory_usage_mb`, `gpu_memory_allocated_mb` and `gc_collections_total` (as deltas of
`gc.get_stats()`, so collections made by `GCCollector` are counted too) and, if given one, feeds a
`MemoryGrowthTracker` so the process can report its own growth slope.
"""

from __future__ import annotations

import gc
from typing import Callable

import psutil

from auralis_ray.config import PerformanceConfig
from auralis_ray.monitor.memory import MB, MemoryGrowthTracker, gpu_allocated_mb
from auralis_ray.monitor.metrics import PerformanceMetrics, get_metrics


class ProcessSampler:
    """Records one process's RSS, GPU memory and GC collections when due (see the module docstring)."""

    def __init__(
        self,
        metrics: PerformanceMetrics,
        interval_sec: float,
        *,
        tracker: MemoryGrowthTracker | None = None,
        rss_mb: Callable[[], float] | None = None,
        gpu_mb: Callable[[], float] = gpu_allocated_mb,
        gc_stats: Callable[[], list[dict]] = gc.get_stats,
    ) -> None:
        if interval_sec <= 0:
            raise ValueError(f"interval_sec must be > 0, got {interval_sec}")
        self.metrics = metrics
        self.interval_sec = interval_sec
        self.tracker = tracker
        process = psutil.Process()
        self._rss_mb = rss_mb or (lambda: process.memory_info().rss / MB)
        self._gpu_mb = gpu_mb
        self._gc_stats = gc_stats
        self._gc_seen = [0, 0, 0]  # collections already reported, per generation
        self._last: float | None = None
        self.last_rss_mb: float | None = None

    @classmethod
    def for_component(cls, component: str, config: PerformanceConfig) -> "ProcessSampler":
        """The sampler a long-lived actor or replica builds at start: this process's metrics for
        `component`, sampled every `monitoring.metrics_collection_interval_sec`, feeding a growth
        tracker configured from `memory`."""
        return cls(
            get_metrics(component, config.monitoring),
            config.monitoring.metrics_collection_interval_sec,
            tracker=MemoryGrowthTracker.from_config(config.memory),
        )

    def due(self, now: float) -> bool:
        return self._last is None or now - self._last >= self.interval_sec

    def sample(self, now: float, *, force: bool = False) -> bool:
        """Record if an interval has passed since the last sample (or `force`); return whether it did."""
        if not (force or self.due(now)):
            return False
        self._last = now
        rss = self._rss_mb()
        self.last_rss_mb = rss
        self.metrics.set_memory_usage(rss)
        self.metrics.set_gpu_memory(self._gpu_mb())
        for generation, stats in enumerate(self._gc_stats()[:3]):
            delta = stats["collections"] - self._gc_seen[generation]
            if delta > 0:
                self.metrics.inc_gc_collections(generation, delta)
                self._gc_seen[generation] = stats["collections"]
        if self.tracker is not None:
            self.tracker.record("sample", now=now, rss_mb=rss)
        return True

