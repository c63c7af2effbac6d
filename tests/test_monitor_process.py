import pytest

from auralis_ray.monitor.memory import MemoryGrowthTracker, MemoryMonitor, MemorySnapshot
from auralis_ray.monitor.metrics import PerformanceMetrics
from auralis_ray.monitor.process import ProcessSampler


def _counts(snap):
    return {e["labels"]["generation"]: e["value"] for e in snap["counters"].get("gc_collections_total", [])}


def test_sampler_records_memory_gpu_and_gc_deltas_on_interval():
    stats = [{"collections": 10}, {"collections": 2}, {"collections": 0}]
    rss = iter([100.0, 101.0, 102.0])
    metrics = PerformanceMetrics("station")
    tracker = MemoryGrowthTracker()

    def snapshot(now):
        counts = [s["collections"] for s in stats]
        return MemorySnapshot(timestamp=now, label="sample", python_mb=0.0, python_peak_mb=0.0, gpu_mb=42.0,
                              rss_mb=next(rss), vms_mb=0.0, gc_gen0_count=counts[0], gc_gen1_count=counts[1],
                              gc_gen2_count=counts[2])

    sampler = ProcessSampler(metrics, 5.0, monitor=MemoryMonitor(tracker=tracker), snapshot=snapshot)
    assert sampler.sample(0.0)
    snap = metrics.snapshot()
    assert snap["gauges"]["memory_usage_mb"][0]["value"] == 100.0
    assert snap["gauges"]["gpu_memory_allocated_mb"][0]["value"] == 42.0
    assert _counts(snap) == {"0": 10.0, "1": 2.0}
    assert not sampler.sample(4.9)  # not due
    stats[0]["collections"], stats[2]["collections"] = 15, 1
    assert sampler.sample(5.0)
    snap = metrics.snapshot()
    assert _counts(snap) == {"0": 15.0, "1": 2.0, "2": 1.0}
    assert snap["gauges"]["memory_usage_mb"][0]["value"] == 101.0
    assert sampler.sample(6.0, force=True) and sampler.last_rss_mb == 102.0
    assert [(m.timestamp, m.rss_mb) for m in tracker.measurements] == [(0.0, 100.0), (5.0, 101.0), (6.0, 102.0)]


def test_sampler_defaults_read_this_process():
    metrics = PerformanceMetrics("ingress")
    sampler = ProcessSampler(metrics, 1.0)
    assert sampler.sample(0.0)
    assert sampler.last_rss_mb > 10 and sampler.last_snapshot.label == "sample"
    assert metrics.snapshot()["gauges"]["gpu_memory_allocated_mb"][0]["value"] >= 0.0
    with pytest.raises(ValueError):
        ProcessSampler(metrics, 0)


def test_for_component_uses_configuration(monkeypatch):
    from auralis_ray.config import PerformanceConfig
    from auralis_ray.monitor import metrics as metrics_module

    monkeypatch.setattr(metrics_module, "_instances", {})
    cfg = PerformanceConfig(monitoring={"metrics_collection_interval_sec": 7},
                            memory={"leak_detection_threshold_mb_per_hour": 3.0})
    sampler = ProcessSampler.for_component("synthesis", cfg)
    assert sampler.interval_sec == 7 and sampler.monitor.tracker.alert_threshold == 3.0
    assert sampler.metrics is metrics_module.get_metrics("synthesis")


LOWER_PRIORITY_CHILD = """
import os, sys, threading
from auralis_ray.monitor.priority import lower_priority
target = int(sys.argv[1])
started, stop = threading.Event(), threading.Event()
worker = threading.Thread(target=lambda: (started.set(), stop.wait()))
worker.start()
started.wait()
now = lower_priority(target)
after = lower_priority(target - 5)  # asking for a higher priority changes nothing
print(now, after, os.getpriority(os.PRIO_PROCESS, worker.native_id))
stop.set()
"""


def test_lower_priority_sets_every_thread_and_never_raises_priority():
    import os
    import subprocess
    import sys

    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    out = subprocess.run([sys.executable, "-c", LOWER_PRIORITY_CHILD, str(target)], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert [int(v) for v in out] == [target, target, target]
