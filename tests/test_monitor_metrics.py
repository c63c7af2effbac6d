"""PerformanceMetrics: local recording, snapshot, bounded cardinality (no Ray needed)."""

import json
import subprocess
import sys

import pytest

from auralis_ray.config import MonitoringConfig
from auralis_ray.monitor import metrics as metrics_module
from auralis_ray.monitor.metrics import METRICS, PerformanceMetrics, batch_bucket, get_metrics


def _entries(snap, section, name):
    return {tuple(sorted(e["labels"].items())): e for e in snap[section][name]}


def test_eleven_seed_metrics_with_bounded_tags():
    assert [m.name for m in METRICS] == [
        "synthesis_latency_seconds", "buffer_depth_chunks", "chunk_delivery_jitter_ms",
        "buffer_underruns_total", "active_websocket_connections", "websocket_send_errors_total",
        "memory_usage_mb", "gpu_memory_allocated_mb", "chunk_encoding_duration_seconds",
        "gc_collections_total", "phrase_generation_rate_hz",
    ]
    for spec in METRICS:
        assert "client_id" not in spec.tag_keys
        assert spec.all_tag_keys[0] == "component"
        assert spec.exported().startswith("ray_")
        if spec.kind == "histogram":
            assert list(spec.boundaries) == sorted(spec.boundaries)


def test_records_locally_outside_ray_and_snapshots_json():
    m = PerformanceMetrics("station", window_size=100)
    for ms in range(1, 101):  # 1..100 ms
        m.observe_chunk_jitter("a", float(ms))
    m.inc_buffer_underruns("a")
    m.inc_buffer_underruns("a", 2)
    m.inc_buffer_underruns("b", 0)  # no-op, creates nothing
    m.set_buffer_depth("a", "normal", 3)
    m.set_buffer_depth("a", "normal", 5)
    m.inc_gc_collections(0, 4)
    snap = json.loads(json.dumps(m.snapshot()))
    assert snap["component"] == "station" and snap["export_errors"] == 0
    assert _entries(snap, "counters", "buffer_underruns_total") == {
        (("station", "a"),): {"labels": {"station": "a"}, "value": 3.0}
    }
    assert snap["gauges"]["buffer_depth_chunks"] == [{"labels": {"station": "a", "tier": "normal"}, "value": 5.0}]
    assert snap["counters"]["gc_collections_total"][0] == {"labels": {"generation": "0"}, "value": 4.0}
    (jitter,) = snap["histograms"]["chunk_delivery_jitter_ms"]
    assert jitter["count"] == 100 and jitter["sum"] == 5050.0
    assert jitter["window"] == {"count": 100, "mean": 50.5, "p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}


def test_histogram_window_is_bounded_but_totals_are_not():
    m = PerformanceMetrics("synthesis", window_size=16)
    for i in range(1000):
        m.observe_synthesis_latency(1.0 if i < 984 else 0.01, batch_size=1)
    (h,) = m.snapshot()["histograms"]["synthesis_latency_seconds"]
    assert h["count"] == 1000
    assert h["window"]["count"] == 16 and h["window"]["max"] == 0.01  # only the recent 16


def test_batch_size_tag_is_bucketed():
    assert [batch_bucket(n) for n in (1, 2, 3, 4, 5, 16, 17, 1024, 1025)] == [
        "1", "2", "4", "4", "8", "16", "32", "1024", ">1024"
    ]
    with pytest.raises(ValueError):
        batch_bucket(0)
    m = PerformanceMetrics("synthesis")
    for n in range(1, 300):
        m.observe_synthesis_latency(0.01, n)
    assert len(m.snapshot()["histograms"]["synthesis_latency_seconds"]) == 10  # 1..512


def test_label_sets_beyond_the_bound_fold_into_other():
    m = PerformanceMetrics("ingress", max_label_sets=3)
    for i in range(10):
        m.inc_websocket_errors(f"E{i}")
    snap = m.snapshot()
    labels = sorted(e["labels"]["error_type"] for e in snap["counters"]["websocket_send_errors_total"])
    assert labels == ["E0", "E1", "E2", "other"]
    assert _entries(snap, "counters", "websocket_send_errors_total")[(("error_type", "other"),)]["value"] == 7
    assert snap["folded_label_sets"] == 7
    m.inc_websocket_errors("E1")  # known sets still pass
    assert _entries(m.snapshot(), "counters", "websocket_send_errors_total")[(("error_type", "E1"),)]["value"] == 2


@pytest.mark.parametrize("call", [
    lambda m: m.inc_buffer_underruns("a", -1),
    lambda m: m.set_memory_usage(float("nan")),
    lambda m: m.inc_gc_collections(3, 1),
])
def test_invalid_values_are_refused(call):
    with pytest.raises(ValueError):
        call(PerformanceMetrics("station"))


def test_unknown_component_refused():
    with pytest.raises(ValueError, match="component"):
        PerformanceMetrics("listener")


def test_get_metrics_is_one_per_process_and_component(monkeypatch):
    monkeypatch.setattr(metrics_module, "_instances", {})
    cfg = MonitoringConfig(metrics_window_size=32, max_label_sets_per_metric=2)
    a = get_metrics("station", cfg)
    assert get_metrics("station") is a and get_metrics("ingress", cfg) is not a
    assert a._window == 32 and a._max_label_sets == 2
    a.set_generation_rate(2.0)
    assert [s["component"] for s in metrics_module.process_snapshots()] == ["station", "ingress"]


def test_export_failure_never_raises(monkeypatch):
    class Broken:
        def set(self, *a, **k):
            raise RuntimeError("exporter down")

    monkeypatch.setattr(metrics_module, "_ray_metric", lambda spec: Broken())
    m = PerformanceMetrics("station")
    m.set_memory_usage(10.0)
    m.set_memory_usage(11.0)
    snap = m.snapshot()
    assert snap["export_errors"] == 2 and snap["gauges"]["memory_usage_mb"][0]["value"] == 11.0


def test_exports_tags_in_declared_order(monkeypatch):
    seen = []

    class Fake:
        def observe(self, value, tags):
            seen.append((value, tags))

    monkeypatch.setattr(metrics_module, "_ray_metric", lambda spec: Fake())
    PerformanceMetrics("synthesis").observe_synthesis_latency(0.05, 3)
    assert seen == [(0.05, {"component": "synthesis", "batch": "4"})]


def test_no_ray_import_outside_ray():
    """Recording outside a Ray worker never imports Ray (checked in a fresh interpreter)."""
    code = ("import sys; from auralis_ray.monitor.metrics import PerformanceMetrics; "
            "PerformanceMetrics('station').set_memory_usage(1.0); print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_known_series_start_at_zero_and_keep_recorded_values():
    from auralis_ray.monitor.metrics import (BUFFER_DEPTH, BUFFER_UNDERRUNS, GC_COLLECTIONS, GENERATION_RATE,
                                             PerformanceMetrics)

    ingress = PerformanceMetrics("ingress")
    ingress.inc_buffer_underruns("calm", 2)
    ingress.declare_known_series(["calm", "storm"])
    counters = ingress.snapshot()["counters"]
    underruns = {row["labels"]["station"]: row["value"] for row in counters[BUFFER_UNDERRUNS.name]}
    assert underruns == {"calm": 2.0, "storm": 0.0}
    assert len(ingress.snapshot()["gauges"][BUFFER_DEPTH.name]) == 2 * 4
    assert [row["value"] for row in counters[GC_COLLECTIONS.name]] == [0.0, 0.0, 0.0]
    ingress.inc_buffer_underruns("storm")
    assert {row["labels"]["station"]: row["value"]
            for row in ingress.snapshot()["counters"][BUFFER_UNDERRUNS.name]} == {"calm": 2.0, "storm": 1.0}

    synthesis = PerformanceMetrics("synthesis")
    synthesis.declare_known_series()
    assert synthesis.snapshot()["gauges"][GENERATION_RATE.name] == [{"labels": {}, "value": 0.0}]
    assert BUFFER_UNDERRUNS.name not in synthesis.snapshot()["counters"]


def test_a_histogram_cannot_be_declared_at_zero():
    from auralis_ray.monitor.metrics import CHUNK_JITTER, PerformanceMetrics

    with pytest.raises(ValueError, match="histogram"):
        PerformanceMetrics("ingress").declare_series(CHUNK_JITTER, [("calm",)])
