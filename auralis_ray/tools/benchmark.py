"""Benchmark records: one JSON file per run under `benchmarks/results/`.

`PerformanceBenchmark.from_latencies` turns measured latencies into a record (pure: the caller
passes wall time, CPU time and memory); `BenchmarkRun` measures those around a block of work:

    with BenchmarkRun() as run:
        for _ in range(100):
            t = time.perf_counter(); work(); run.record(time.perf_counter() - t)
    run.result("synthesis_latency_cpu", device_type="cpu").save("benchmarks/results")

Fields are keyword-only. Percentiles are nearest-rank (an observed latency), and the record keeps
its sample count and duration, without which a p99 cannot be judged.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import psutil

from auralis_ray.monitor.memory import MB
from auralis_ray.monitor.stats import Summary

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@dataclass(kw_only=True)
class PerformanceBenchmark:
    """Performance benchmark result."""

    benchmark_name: str
    timestamp: float

    # Latency metrics
    mean_latency_ms: float
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    max_latency_ms: float

    # Throughput metrics
    operations_per_second: float

    # Resource metrics
    cpu_percent: float
    memory_mb: float
    gpu_utilization_percent: Optional[float] = None

    # Configuration
    device_type: str  # "mps", "cuda", "cpu"
    batch_size: Optional[int] = None
    concurrent_clients: Optional[int] = None

    # Context without which the figures above cannot be judged
    samples: int = 0
    duration_sec: float = 0.0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_latencies(
        cls,
        benchmark_name: str,
        latencies_sec: Sequence[float],
        *,
        wall_sec: float,
        cpu_sec: float,
        memory_mb: float,
        device_type: str,
        timestamp: float,
        **fields,
    ) -> "PerformanceBenchmark":
        """A record from per-operation latencies (seconds) measured over `wall_sec` of wall time,
        during which the process used `cpu_sec` of CPU (user + system, so >100 % means >1 core)."""
        if not latencies_sec:
            raise ValueError("no latencies")
        if wall_sec <= 0:
            raise ValueError(f"wall_sec must be > 0, got {wall_sec}")
        s = Summary.of([x * 1000.0 for x in latencies_sec])
        return cls(
            benchmark_name=benchmark_name,
            timestamp=timestamp,
            mean_latency_ms=s.mean,
            p50_latency_ms=s.p50,
            p95_latency_ms=s.p95,
            p99_latency_ms=s.p99,
            max_latency_ms=s.max,
            operations_per_second=s.count / wall_sec,
            cpu_percent=100.0 * cpu_sec / wall_sec,
            memory_mb=memory_mb,
            device_type=device_type,
            samples=s.count,
            duration_sec=wall_sec,
            **fields,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PerformanceBenchmark":
        return cls(**json.loads(text))

    def save(self, directory: str | Path = RESULTS_DIR) -> Path:
        """Write `<name>-<UTC time>.json` into `directory` (created if needed); return its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.timestamp))
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", self.benchmark_name)
        path = directory / f"{stem}-{stamp}.json"
        n = 1
        while path.exists():
            n += 1
            path = directory / f"{stem}-{stamp}-{n}.json"
        path.write_text(self.to_json() + "\n")
        return path


class BenchmarkRun:
    """Measures wall time, this process's CPU time and peak RSS around recorded latencies."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.latencies_sec: list[float] = []
        self.peak_rss_mb = 0.0
        self._start_wall = self._start_cpu = 0.0
        self.wall_sec = self.cpu_sec = 0.0
        self.started_at = 0.0

    def _cpu(self) -> float:
        t = self._process.cpu_times()
        return t.user + t.system

    def _sample_rss(self) -> None:
        self.peak_rss_mb = max(self.peak_rss_mb, self._process.memory_info().rss / MB)

    def __enter__(self) -> "BenchmarkRun":
        self.started_at = time.time()
        self._start_wall, self._start_cpu = time.perf_counter(), self._cpu()
        self._sample_rss()
        return self

    def record(self, latency_sec: float) -> None:
        self.latencies_sec.append(latency_sec)
        if len(self.latencies_sec) % 64 == 0:
            self._sample_rss()

    def __exit__(self, *exc) -> None:
        self.wall_sec = time.perf_counter() - self._start_wall
        self.cpu_sec = self._cpu() - self._start_cpu
        self._sample_rss()

    def result(self, benchmark_name: str, *, device_type: str, **fields) -> PerformanceBenchmark:
        return PerformanceBenchmark.from_latencies(
            benchmark_name,
            self.latencies_sec,
            wall_sec=self.wall_sec,
            cpu_sec=self.cpu_sec,
            memory_mb=self.peak_rss_mb,
            device_type=device_type,
            timestamp=self.started_at,
            **fields,
        )
