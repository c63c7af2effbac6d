"""Memory snapshots and leak detection.

* A process's first minutes are warm-up (imports, torch kernels, Ray's buffers, the broadcast ring
  filling to capacity). `MemoryGrowthTracker` fits its line only to the measurements after a
  warm-up fraction of the observed span, and alerts only once that fitted span is long enough for
  an hourly slope to mean something.
* The tracker and the monitor are bounded; the tracker halves its resolution when full, so it still
  covers the whole run.
* Time and RSS are inputs (`record(label, now=..., rss_mb=...)`), so an hour of growth is a
  millisecond test; the process is read only where they are omitted.
"""

from __future__ import annotations

import gc
import math
import sys
import time
import tracemalloc
from collections import deque
from dataclasses import asdict, dataclass
from typing import IO, Optional

import psutil

from auralis_ray.config import MemoryConfig
from auralis_ray.monitor.stats import fit_line

MB = 1024 * 1024
_DEFAULTS = MemoryConfig()  # the configuration tree's `memory` section owns every default


def gpu_allocated_mb() -> float:
    """torch's allocated CUDA memory in MB; 0 when torch is not loaded in this process or no GPU."""
    torch = sys.modules.get("torch")  # never import torch just to learn there is no GPU
    if torch is None or not torch.cuda.is_available():
        return 0.0
    return torch.cuda.memory_allocated() / MB


@dataclass(frozen=True)
class MemorySnapshot:
    """Point-in-time memory usage snapshot."""

    timestamp: float  # Unix time
    label: str
    python_mb: float  # traced by tracemalloc (0 when not tracing)
    python_peak_mb: float
    gpu_mb: float
    rss_mb: float
    vms_mb: float
    gc_gen0_count: int  # collections of each generation since start
    gc_gen1_count: int
    gc_gen2_count: int

    def memory_growth_mb(self, baseline: "MemorySnapshot") -> float:
        """RSS growth since `baseline`."""
        return self.rss_mb - baseline.rss_mb

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def take(cls, label: str, now: float | None = None, process: psutil.Process | None = None) -> "MemorySnapshot":
        """Read this process now."""
        info = (process or psutil.Process()).memory_info()
        traced, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
        gen0, gen1, gen2 = (s["collections"] for s in gc.get_stats())
        return cls(
            timestamp=time.time() if now is None else now,
            label=label,
            python_mb=traced / MB,
            python_peak_mb=peak / MB,
            gpu_mb=gpu_allocated_mb(),
            rss_mb=info.rss / MB,
            vms_mb=info.vms / MB,
            gc_gen0_count=gen0,
            gc_gen1_count=gen1,
            gc_gen2_count=gen2,
        )


@dataclass(frozen=True)
class MemoryMeasurement:
    """Single memory measurement."""

    timestamp: float
    rss_mb: float
    label: str


@dataclass(frozen=True)
class GrowthReport:
    """The tracker's verdict: slope over the fitted (post-warm-up) window, and whether it alerts."""

    growth_mb_per_hour: float  # nan until at least 3 measurements lie past the warm-up
    slope_stderr_mb_per_hour: float
    fitted_measurements: int
    fitted_span_sec: float
    threshold_mb_per_hour: float
    alert: Optional[str]

    def to_dict(self) -> dict:
        return asdict(self)


class MemoryGrowthTracker:
    """Track RSS growth rate over time and alert past a threshold (see the module docstring)."""

    MIN_FIT_POINTS = 3

    def __init__(
        self,
        alert_threshold_mb_per_hour: float = _DEFAULTS.leak_detection_threshold_mb_per_hour,
        *,
        warmup_fraction: float = _DEFAULTS.growth_warmup_fraction,
        min_span_sec: float = _DEFAULTS.growth_min_span_sec,
        max_measurements: int = _DEFAULTS.growth_max_measurements,
    ) -> None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
        if max_measurements < 8:
            raise ValueError("max_measurements must be at least 8")
        self.alert_threshold = alert_threshold_mb_per_hour
        self.warmup_fraction = warmup_fraction
        self.min_span_sec = min_span_sec
        self.max_measurements = max_measurements
        self.measurements: list[MemoryMeasurement] = []

    @classmethod
    def from_config(cls, config: MemoryConfig) -> "MemoryGrowthTracker":
        return cls(
            config.leak_detection_threshold_mb_per_hour,
            warmup_fraction=config.growth_warmup_fraction,
            min_span_sec=config.growth_min_span_sec,
            max_measurements=config.growth_max_measurements,
        )

    @property
    def start_time(self) -> float | None:
        return self.measurements[0].timestamp if self.measurements else None

    def record(self, label: str, now: float | None = None, rss_mb: float | None = None) -> MemoryMeasurement:
        """Record one measurement; `now` and `rss_mb` default to the clock and this process's RSS."""
        if rss_mb is None:
            rss_mb = psutil.Process().memory_info().rss / MB
        measurement = MemoryMeasurement(time.time() if now is None else now, float(rss_mb), label)
        if self.measurements and measurement.timestamp < self.measurements[-1].timestamp:
            raise ValueError("measurements must be recorded in time order")
        if len(self.measurements) >= self.max_measurements:
            self.measurements = self.measurements[::2]  # halve resolution, keep the whole span
        self.measurements.append(measurement)
        return measurement

    def fitted(self) -> list[MemoryMeasurement]:
        """The measurements after the warm-up fraction of the observed time span."""
        if not self.measurements:
            return []
        first, last = self.measurements[0].timestamp, self.measurements[-1].timestamp
        cutoff = first + self.warmup_fraction * (last - first)
        return [m for m in self.measurements if m.timestamp >= cutoff]

    def report(self) -> GrowthReport:
        window = self.fitted()
        span = window[-1].timestamp - window[0].timestamp if window else 0.0
        slope = stderr = math.nan
        if len(window) >= self.MIN_FIT_POINTS and span > 0:
            t0 = window[0].timestamp
            fit = fit_line([(m.timestamp - t0) / 3600.0 for m in window], [m.rss_mb for m in window])
            slope, stderr = fit.slope, fit.slope_stderr
        alert = None
        if span >= self.min_span_sec and slope > self.alert_threshold:
            alert = (
                f"memory growing {slope:.1f} MB/h (threshold {self.alert_threshold:.1f} MB/h) "
                f"over the last {span / 60:.0f} min, {len(window)} measurements after warm-up"
            )
        return GrowthReport(slope, stderr, len(window), span, self.alert_threshold, alert)

    def get_growth_rate(self) -> float:
        """MB/hour growth over the fitted window (nan while too few measurements)."""
        return self.report().growth_mb_per_hour

    def check_alert(self) -> Optional[str]:
        """A message when growth exceeds the threshold over a long enough window, else None."""
        return self.report().alert


@dataclass(frozen=True)
class Allocation:
    """One line of `MemoryMonitor.top_allocations`."""

    location: str  # "file:line"
    size_mb: float
    count: int


class MemoryMonitor:
    """Snapshots over time, top allocations (tracemalloc) and leak detection.

    tracemalloc slows every allocation noticeably, so it is opt-in (`memory.enable_tracemalloc`)
    and stopped again by `close()` if this monitor started it.
    """

    _IGNORED = (tracemalloc.__file__, "<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>", "<unknown>")

    def __init__(
        self,
        *,
        enable_tracemalloc: bool = _DEFAULTS.enable_tracemalloc,
        frames: int = _DEFAULTS.tracemalloc_frames,
        max_snapshots: int = _DEFAULTS.max_snapshots,
        tracker: MemoryGrowthTracker | None = None,
    ) -> None:
        self.baseline_mb: Optional[float] = None
        self.snapshots: deque[MemorySnapshot] = deque(maxlen=max_snapshots)
        self.tracker = tracker or MemoryGrowthTracker()
        self._started_tracemalloc = False
        if enable_tracemalloc and not tracemalloc.is_tracing():
            tracemalloc.start(frames)
            self._started_tracemalloc = True

    @classmethod
    def from_config(cls, config: MemoryConfig) -> "MemoryMonitor":
        return cls(
            enable_tracemalloc=config.enable_tracemalloc,
            frames=config.tracemalloc_frames,
            max_snapshots=config.max_snapshots,
            tracker=MemoryGrowthTracker.from_config(config),
        )

    def snapshot(self, label: str, now: float | None = None) -> MemorySnapshot:
        """Take a snapshot of this process, keep it, and feed its RSS to the growth tracker."""
        snap = MemorySnapshot.take(label, now)
        return self.add(snap)

    def add(self, snap: MemorySnapshot) -> MemorySnapshot:
        """Keep a snapshot taken elsewhere (or built by a test)."""
        if self.baseline_mb is None:
            self.baseline_mb = snap.rss_mb
        self.snapshots.append(snap)
        self.tracker.record(snap.label, now=snap.timestamp, rss_mb=snap.rss_mb)
        return snap

    def top_allocations(self, limit: int = 10) -> list[Allocation]:
        """The lines holding the most traced memory now (empty when tracemalloc is off)."""
        if not tracemalloc.is_tracing():
            return []
        filters = [tracemalloc.Filter(False, pattern) for pattern in self._IGNORED]
        stats = tracemalloc.take_snapshot().filter_traces(filters).statistics("lineno")
        return [
            Allocation(f"{s.traceback[0].filename}:{s.traceback[0].lineno}", s.size / MB, s.count)
            for s in stats[:limit]
        ]

    def print_top_allocations(self, limit: int = 10, file: IO[str] | None = None) -> None:
        out = file or sys.stdout
        allocations = self.top_allocations(limit)
        if not allocations:
            print("tracemalloc is not tracing: no allocation data", file=out)
        for rank, a in enumerate(allocations, 1):
            print(f"#{rank}: {a.location}: {a.size_mb:.3f} MB in {a.count} blocks", file=out)

    def detect_leak(self, threshold_mb: float | None = None) -> bool:
        """True when RSS grows faster than `threshold_mb` per hour after warm-up (default: the
        tracker's threshold); see `MemoryGrowthTracker`."""
        report = self.tracker.report()
        threshold = self.tracker.alert_threshold if threshold_mb is None else threshold_mb
        return report.fitted_span_sec >= self.tracker.min_span_sec and report.growth_mb_per_hour > threshold

    def close(self) -> None:
        if self._started_tracemalloc:
            tracemalloc.stop()
            self._started_tracemalloc = False
