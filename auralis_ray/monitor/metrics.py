"""The eleven performance metrics, recorded where they happen and exported through Ray.

Each process records through one `PerformanceMetrics` per component ("synthesis", "station",
"ingress"). Every record goes two ways:

* to `ray.util.metrics`, which Ray exports on its metrics port as ``ray_<name>`` (histograms as
  ``ray_<name>_bucket`` / ``_sum`` / ``_count``); that is what Prometheus, the alert rules and the
  Grafana dashboard read;
* to a small local store (counts, last values, a bounded window of recent observations per
  histogram series) that `snapshot()` turns into the JSON behind ``/api/metrics``.

* Tags are bounded sets (station, tier, error_type, generation, a power-of-two batch size bucket),
  never ``client_id``, and as a backstop each metric accepts at most
  ``monitoring.max_label_sets_per_metric`` distinct tag sets; later ones are folded into
  ``"other"``. Per-listener detail belongs in the protocol's ``buffer_status`` messages.
* Ray metrics are created lazily once Ray is connected: a `PerformanceMetrics` built outside a Ray
  worker (a unit test, a benchmark script) records locally and never fails.
* A metric failure must never stop the audio: errors from the Ray exporter are counted in the
  snapshot (``export_errors``) and otherwise swallowed.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Literal

from auralis_ray.monitor.stats import Summary
from auralis_ray.stream.adaptive import TIER_ORDER

log = logging.getLogger(__name__)

RAY_PREFIX = "ray_"
COMPONENT_TAG = "component"
OTHER = "other"

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name as recorded, its type, tags (besides `component`) and histogram buckets."""

    name: str
    kind: Kind
    description: str
    tag_keys: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()

    def exported(self, suffix: str = "") -> str:
        """The series name Ray 2.60 exports, e.g. ``ray_synthesis_latency_seconds_bucket``."""
        return RAY_PREFIX + self.name + (f"_{suffix}" if suffix else "")

    @property
    def all_tag_keys(self) -> tuple[str, ...]:
        return (COMPONENT_TAG, *self.tag_keys)


SYNTHESIS_LATENCY = MetricSpec(
    "synthesis_latency_seconds", "histogram", "Wall time to render one batch of audio",
    ("batch",), (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
)
BUFFER_DEPTH = MetricSpec(
    "buffer_depth_chunks", "gauge", "Chunks listeners are behind the live edge", ("station", "tier"),
)
CHUNK_JITTER = MetricSpec(
    "chunk_delivery_jitter_ms", "histogram", "Chunk delivery lateness against its schedule",
    ("station",), (1, 2, 5, 10, 20, 30, 50, 75, 100, 200, 500),
)
BUFFER_UNDERRUNS = MetricSpec(
    "buffer_underruns_total", "counter", "Buffer underrun events", ("station",),
)
ACTIVE_CONNECTIONS = MetricSpec(
    "active_websocket_connections", "gauge", "Connected WebSocket listeners", ("station",),
)
WEBSOCKET_ERRORS = MetricSpec(
    "websocket_send_errors_total", "counter", "Failed WebSocket send operations", ("error_type",),
)
MEMORY_USAGE = MetricSpec("memory_usage_mb", "gauge", "Process resident memory (RSS)")
GPU_MEMORY = MetricSpec("gpu_memory_allocated_mb", "gauge", "GPU memory allocated by torch")
ENCODING_DURATION = MetricSpec(
    "chunk_encoding_duration_seconds", "histogram", "Time to encode one chunk for the wire",
    (), (0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02),
)
GC_COLLECTIONS = MetricSpec(
    "gc_collections_total", "counter", "Python garbage collections", ("generation",),
)
GENERATION_RATE = MetricSpec(
    "phrase_generation_rate_hz", "gauge", "Phrases generated per second",
)

METRICS: tuple[MetricSpec, ...] = (
    SYNTHESIS_LATENCY, BUFFER_DEPTH, CHUNK_JITTER, BUFFER_UNDERRUNS, ACTIVE_CONNECTIONS,
    WEBSOCKET_ERRORS, MEMORY_USAGE, GPU_MEMORY, ENCODING_DURATION, GC_COLLECTIONS, GENERATION_RATE,
)
METRICS_BY_NAME = {spec.name: spec for spec in METRICS}

COMPONENTS = ("synthesis", "station", "ingress")
# the error types the ingress counts as it runs; others (a refused handshake's code, an exception's
# class) appear when they first happen
KNOWN_ERROR_TYPES = ("station_fetch", "stalled", "internal", "invalid_message")
GC_GENERATIONS = ("0", "1", "2")


def batch_bucket(batch_size: int) -> str:
    """A bounded tag for a batch size: the next power of two, capped (``"1"``, ``"2"``, … ``">1024"``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size > 1024:
        return ">1024"
    return str(1 << (batch_size - 1).bit_length())


# One Ray metric object per name per process, shared by every component recorded in that process.
_ray_metrics: dict[str, object] = {}
_ray_lock = threading.Lock()


def _ray_metric(spec: MetricSpec):
    """The process's Ray metric for `spec`, or None while this process is not connected to Ray."""
    ray = sys.modules.get("ray")  # not imported: surely not a Ray worker, and no import cost here
    if ray is None or not ray.is_initialized():
        return None
    with _ray_lock:
        metric = _ray_metrics.get(spec.name)
        if metric is None:
            from ray.util import metrics as ray_metrics

            if spec.kind == "counter":
                metric = ray_metrics.Counter(spec.name, spec.description, spec.all_tag_keys)
            elif spec.kind == "gauge":
                metric = ray_metrics.Gauge(spec.name, spec.description, spec.all_tag_keys)
            else:
                metric = ray_metrics.Histogram(
                    spec.name, spec.description, list(spec.boundaries), spec.all_tag_keys
                )
            _ray_metrics[spec.name] = metric
        return metric


class _Series:
    """Local state of one histogram series: all-time count and sum, plus a bounded recent window."""

    __slots__ = ("count", "total", "recent")

    def __init__(self, window: int) -> None:
        self.count = 0
        self.total = 0.0
        self.recent: deque[float] = deque(maxlen=window)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.recent.append(value)


TagSet = tuple[str, ...]


class PerformanceMetrics:
    """The performance metrics of one component of one process; see the module docstring."""

    def __init__(self, component: str, *, window_size: int = 1024, max_label_sets: int = 64) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")
        self.component = component
        self._window = window_size
        self._max_label_sets = max_label_sets
        self._lock = threading.Lock()
        self._values: dict[tuple[str, TagSet], float] = {}  # counters and gauges
        self._series: dict[tuple[str, TagSet], _Series] = {}
        self._label_sets: dict[str, set[TagSet]] = {spec.name: set() for spec in METRICS}
        self.folded_label_sets = 0
        self.export_errors = 0

    # --- the eleven metrics ------------------------------------------------------------------
    def observe_synthesis_latency(self, seconds: float, batch_size: int) -> None:
        self._record(SYNTHESIS_LATENCY, seconds, (batch_bucket(batch_size),))

    def set_buffer_depth(self, station: str, tier: str, chunks: float) -> None:
        self._record(BUFFER_DEPTH, chunks, (station, tier))

    def observe_chunk_jitter(self, station: str, ms: float) -> None:
        self._record(CHUNK_JITTER, ms, (station,))

    def inc_buffer_underruns(self, station: str, n: int = 1) -> None:
        self._record(BUFFER_UNDERRUNS, n, (station,))

    def set_active_connections(self, station: str, n: int) -> None:
        self._record(ACTIVE_CONNECTIONS, n, (station,))

    def inc_websocket_errors(self, error_type: str, n: int = 1) -> None:
        self._record(WEBSOCKET_ERRORS, n, (error_type,))

    def set_memory_usage(self, mb: float) -> None:
        self._record(MEMORY_USAGE, mb, ())

    def set_gpu_memory(self, mb: float) -> None:
        self._record(GPU_MEMORY, mb, ())

    def observe_encoding_duration(self, seconds: float) -> None:
        self._record(ENCODING_DURATION, seconds, ())

    def inc_gc_collections(self, generation: int, n: int) -> None:
        if generation not in (0, 1, 2):
            raise ValueError(f"generation must be 0, 1 or 2, got {generation}")
        self._record(GC_COLLECTIONS, n, (str(generation),))

    def set_generation_rate(self, hz: float) -> None:
        self._record(GENERATION_RATE, hz, ())

    # --- known series at 0 --------------------------------------------------------------------
    def declare_known_series(self, stations: Iterable[str] = ()) -> None:
        """Export this component's counters and gauges at 0 for every label set known at start.

        A counter born at 1 hides its first event from `rate()`, `increase()` and the alert rules,
        and a dashboard cannot tell a quiet series from a missing one. Histograms get real
        observations from the first rendered chunk on.
        """
        stations = tuple(stations)
        self.declare_series(GC_COLLECTIONS, [(g,) for g in GC_GENERATIONS])
        if self.component == "synthesis":
            self.declare_series(GENERATION_RATE, [()])
        if self.component == "ingress":
            self.declare_series(BUFFER_UNDERRUNS, [(s,) for s in stations])
            self.declare_series(ACTIVE_CONNECTIONS, [(s,) for s in stations])
            self.declare_series(BUFFER_DEPTH, [(s, t) for s in stations for t in TIER_ORDER])
            self.declare_series(WEBSOCKET_ERRORS, [(e,) for e in KNOWN_ERROR_TYPES])
        if self.component in ("synthesis", "station"):
            self.declare_series(MEMORY_USAGE, [()])
            self.declare_series(GPU_MEMORY, [()])

    def declare_series(self, spec: MetricSpec, label_sets: Iterable[TagSet]) -> None:
        """Record 0 for each label set of a counter or gauge that has no value yet."""
        if spec.kind == "histogram":
            raise ValueError(f"{spec.name}: a histogram has no 0 to export; it appears with its first observation")
        for tags in label_sets:
            tags = tuple(str(t) for t in tags)
            key = (spec.name, self._bounded(spec.name, tags))
            with self._lock:
                if key in self._values:
                    continue
                self._values[key] = 0.0
            self._export(spec, 0.0, key[1])

    # --- recording ---------------------------------------------------------------------------
    def _record(self, spec: MetricSpec, value: float, tags: TagSet) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{spec.name}: value must be finite, got {value}")
        if spec.kind == "counter":
            if value < 0:
                raise ValueError(f"{spec.name}: a counter cannot decrease (got {value})")
            if value == 0:
                return
        tags = tuple(str(t) for t in tags)
        key = (spec.name, self._bounded(spec.name, tags))
        with self._lock:
            if spec.kind == "counter":
                self._values[key] = self._values.get(key, 0.0) + value
            elif spec.kind == "gauge":
                self._values[key] = value
            else:
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series(self._window)
                series.observe(value)
        self._export(spec, value, key[1])

    def _bounded(self, name: str, tags: TagSet) -> TagSet:
        if not tags:
            return tags
        with self._lock:
            seen = self._label_sets[name]
            if tags in seen:
                return tags
            if len(seen) < self._max_label_sets:
                seen.add(tags)
                return tags
            self.folded_label_sets += 1
        return tuple(OTHER for _ in tags)

    def _export(self, spec: MetricSpec, value: float, tags: TagSet) -> None:
        try:
            metric = _ray_metric(spec)
            if metric is None:
                return
            ray_tags = dict(zip(spec.all_tag_keys, (self.component, *tags)))
            if spec.kind == "counter" and value == 0:
                # Ray's Counter.inc refuses 0; the record call under it (the one Gauge.set and
                # Histogram.observe make) adds 0 to the counter, which exports the series at 0
                metric._record(0.0, tags=ray_tags)
            elif spec.kind == "counter":
                metric.inc(value, tags=ray_tags)
            elif spec.kind == "gauge":
                metric.set(value, tags=ray_tags)
            else:
                metric.observe(value, tags=ray_tags)
        except Exception:  # noqa: BLE001 - metrics must never break the stream
            self.export_errors += 1
            if self.export_errors == 1:
                log.exception("exporting %s to Ray failed; further failures are only counted", spec.name)

    # --- reading -----------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """A JSON-able view of what this process recorded for this component.

        Counters: totals since start. Gauges: last value. Histograms: all-time count and sum, and
        mean/p50/p95/p99/max over the most recent `window_size` observations of each series.
        """
        with self._lock:
            values = dict(self._values)
            series = {key: (s.count, s.total, list(s.recent)) for key, s in self._series.items()}
        out: dict = {
            "component": self.component,
            "pid": os.getpid(),
            "counters": {},
            "gauges": {},
            "histograms": {},
            "folded_label_sets": self.folded_label_sets,
            "export_errors": self.export_errors,
        }
        for (name, tags), value in sorted(values.items()):
            spec = METRICS_BY_NAME[name]
            section = out["counters" if spec.kind == "counter" else "gauges"]
            section.setdefault(name, []).append({"labels": dict(zip(spec.tag_keys, tags)), "value": value})
        for (name, tags), (count, total, recent) in sorted(series.items()):
            spec = METRICS_BY_NAME[name]
            summary = Summary.of(recent)
            out["histograms"].setdefault(name, []).append(
                {
                    "labels": dict(zip(spec.tag_keys, tags)),
                    "count": count,
                    "sum": total,
                    "window": {
                        "count": summary.count, "mean": summary.mean, "p50": summary.p50,
                        "p95": summary.p95, "p99": summary.p99, "max": summary.max,
                    },
                }
            )
        return out


_instances: dict[str, PerformanceMetrics] = {}
_instances_lock = threading.Lock()


def get_metrics(component: str, config=None) -> PerformanceMetrics:
    """The one `PerformanceMetrics` of this process for `component`.

    `config` is a `MonitoringConfig`; the first call for a component fixes its window and
    cardinality bound (default: the process's `get_config().monitoring`).
    """
    with _instances_lock:
        metrics = _instances.get(component)
        if metrics is None:
            if config is None:
                from auralis_ray.config import get_config

                config = get_config().monitoring
            metrics = _instances[component] = PerformanceMetrics(
                component,
                window_size=config.metrics_window_size,
                max_label_sets=config.max_label_sets_per_metric,
            )
            metrics.declare_known_series()
        return metrics


def process_snapshots() -> list[dict]:
    """Snapshots of every component recorded in this process (for a process hosting several)."""
    with _instances_lock:
        instances = list(_instances.values())
    return [m.snapshot() for m in instances]
