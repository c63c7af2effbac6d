"""MemoryGrowthTracker with a fake clock; MemorySnapshot and MemoryMonitor on this process."""

import io
import math
import tracemalloc

import pytest

from auralis_ray.config import MemoryConfig
from auralis_ray.monitor.memory import MemoryGrowthTracker, MemoryMonitor, MemorySnapshot
from auralis_ray.monitor.stats import fit_line

HOUR = 3600.0


def _feed(tracker, minutes, rss_at):
    for minute in range(minutes + 1):
        tracker.record("t", now=1000.0 + 60 * minute, rss_mb=rss_at(minute))


def _warmup_then_flat(minute):
    return 200.0 + 5.0 * min(minute, 20)  # +100 MB over 20 min of warm-up, then flat


def test_warmup_ramp_is_not_a_leak_though_a_fit_over_the_whole_span_says_so():
    tracker = MemoryGrowthTracker(20.0, warmup_fraction=0.2, min_span_sec=600)
    _feed(tracker, 120, _warmup_then_flat)
    report = tracker.report()
    assert report.alert is None and abs(report.growth_mb_per_hour) < 1e-9
    # A fit over the whole span since start flags this healthy process:
    xs = [(m.timestamp - tracker.start_time) / HOUR for m in tracker.measurements]
    assert fit_line(xs, [m.rss_mb for m in tracker.measurements]).slope > 20.0


def test_sustained_growth_alerts_with_measured_slope():
    tracker = MemoryGrowthTracker(20.0, warmup_fraction=0.2, min_span_sec=600)
    _feed(tracker, 120, lambda m: _warmup_then_flat(m) + 0.5 * m)  # + 30 MB/h throughout
    assert tracker.get_growth_rate() == pytest.approx(30.0)
    alert = tracker.check_alert()
    assert alert is not None and "30.0 MB/h" in alert
    assert tracker.report().fitted_measurements == 97  # minutes 24..120


def test_below_threshold_and_too_short_do_not_alert():
    slow = MemoryGrowthTracker(20.0, min_span_sec=600)
    _feed(slow, 120, lambda m: 100 + 0.25 * m)  # 15 MB/h
    assert slow.get_growth_rate() == pytest.approx(15.0) and slow.check_alert() is None
    short = MemoryGrowthTracker(20.0, min_span_sec=600)
    _feed(short, 5, lambda m: 100 + 10 * m)  # 600 MB/h but only 5 minutes seen
    assert short.get_growth_rate() == pytest.approx(600.0) and short.check_alert() is None


def test_too_few_measurements_give_nan_not_an_error():
    tracker = MemoryGrowthTracker()
    assert math.isnan(tracker.get_growth_rate())
    tracker.record("a", now=0.0, rss_mb=1.0)
    tracker.record("b", now=0.0, rss_mb=2.0)
    assert math.isnan(tracker.get_growth_rate()) and tracker.check_alert() is None


def test_bounded_measurements_keep_the_whole_span():
    tracker = MemoryGrowthTracker(20.0, max_measurements=64, min_span_sec=60)
    _feed(tracker, 1000, lambda m: 100 + 0.5 * m)
    assert len(tracker.measurements) <= 64
    assert tracker.start_time == 1000.0 and tracker.measurements[-1].timestamp == 1000.0 + 60_000
    assert tracker.get_growth_rate() == pytest.approx(30.0)


def test_time_must_not_go_backwards():
    tracker = MemoryGrowthTracker()
    tracker.record("a", now=10.0, rss_mb=1.0)
    with pytest.raises(ValueError):
        tracker.record("b", now=9.0, rss_mb=1.0)


def test_from_config():
    cfg = MemoryConfig(leak_detection_threshold_mb_per_hour=5, growth_warmup_fraction=0.5,
                       growth_min_span_sec=30, growth_max_measurements=16)
    t = MemoryGrowthTracker.from_config(cfg)
    assert (t.alert_threshold, t.warmup_fraction, t.min_span_sec, t.max_measurements) == (5, 0.5, 30, 16)


def test_snapshot_reads_this_process():
    snap = MemorySnapshot.take("now", now=5.0)
    assert snap.timestamp == 5.0 and snap.rss_mb > 10 and snap.vms_mb >= snap.rss_mb
    assert snap.gpu_mb == 0.0 and snap.gc_gen0_count >= 0
    later = MemorySnapshot(**{**snap.to_dict(), "rss_mb": snap.rss_mb + 12.5})
    assert later.memory_growth_mb(snap) == pytest.approx(12.5)


def test_monitor_top_allocations_and_leak_detection():
    was_tracing = tracemalloc.is_tracing()
    monitor = MemoryMonitor(enable_tracemalloc=True, frames=1, max_snapshots=4,
                            tracker=MemoryGrowthTracker(20.0, min_span_sec=600))
    try:
        hog = [bytearray(1024) for _ in range(20_000)]  # ~20 MB from this line
        top = monitor.top_allocations(3)
        assert top[0].location.endswith(f"test_monitor_memory.py:{hog_line()}")
        assert top[0].size_mb > 15
        out = io.StringIO()
        monitor.print_top_allocations(2, file=out)
        assert out.getvalue().startswith("#1: ") and len(out.getvalue().splitlines()) == 2
        base = MemorySnapshot.take("base", now=0.0)
        for minute in range(0, 121, 10):
            monitor.add(MemorySnapshot(**{**base.to_dict(), "timestamp": 60.0 * minute,
                                          "label": f"m{minute}", "rss_mb": 100 + minute}))  # 60 MB/h
        assert len(monitor.snapshots) == 4 and monitor.baseline_mb == 100
        assert monitor.detect_leak() and not monitor.detect_leak(threshold_mb=100)
        del hog
    finally:
        monitor.close()
    assert tracemalloc.is_tracing() == was_tracing


def hog_line() -> int:
    import inspect

    source, start = inspect.getsourcelines(test_monitor_top_allocations_and_leak_detection)
    return start + next(i for i, line in enumerate(source) if "hog = [" in line)


def test_monitor_without_tracemalloc():
    monitor = MemoryMonitor.from_config(MemoryConfig(enable_tracemalloc=False))
    if not tracemalloc.is_tracing():
        assert monitor.top_allocations() == []
    snap = monitor.snapshot("x")
    assert monitor.snapshots[-1] is snap and monitor.tracker.measurements[-1].rss_mb == snap.rss_mb
    monitor.close()
