import gc

import pytest

from auralis_ray.config import MemoryConfig
from auralis_ray.monitor.gc_config import (
    GCCollector,
    GCConfig,
    GCPauseTracker,
    ScheduledFullCollection,
    apply_gc_config,
    configure_gc,
)


@pytest.fixture
def restore_gc():
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_defaults_are_the_memory_sections_and_from_memory_config():
    assert GCConfig() == GCConfig.from_memory_config(MemoryConfig()) == GCConfig(5000, 50, 50, True, 100, 10)
    cfg = MemoryConfig(gc_gen0_threshold=1234, gc_gen1_threshold=7, gc_gen2_threshold=9,
                       auto_gc_enabled=False, manual_collect_interval=3, manual_full_collect_every=2)
    assert GCConfig.from_memory_config(cfg) == GCConfig(1234, 7, 9, False, 3, 2)


def test_apply_and_restore(restore_gc):
    gc.set_threshold(700, 10, 10)
    gc.enable()
    previous = apply_gc_config(GCConfig(4000, 20, 30, auto_gc_enabled=False))
    assert gc.get_threshold() == (4000, 20, 30) and not gc.isenabled()
    previous.restore()
    assert gc.get_threshold() == (700, 10, 10) and gc.isenabled()


def test_collector_collects_young_often_and_full_rarely():
    calls = []
    clock = iter([0.0, 0.002] * 100)
    collector = GCCollector(GCConfig(auto_gc_enabled=False, manual_collect_interval=3, manual_full_collect_every=4),
                            collect=calls.append, clock=lambda: next(clock))
    results = [collector.tick() for _ in range(24)]
    assert results == [None, None, 1, None, None, 1, None, None, 1, None, None, 2] * 2
    assert calls == [1, 1, 1, 2, 1, 1, 1, 2]
    assert collector.full_collections == 2 and collector.last_pause_sec == pytest.approx(0.002)


def test_collector_idle_when_auto_gc_on():
    calls = []
    collector = GCCollector(GCConfig(auto_gc_enabled=True, manual_collect_interval=1), collect=calls.append)
    assert [collector.tick() for _ in range(5)] == [None] * 5 and calls == []


def test_configure_gc(restore_gc):
    gc.set_threshold(700, 10, 10)
    gc.enable()
    untouched = configure_gc(MemoryConfig(enable_gc_tuning=False, auto_gc_enabled=False))
    assert not untouched.active and gc.get_threshold() == (700, 10, 10) and gc.isenabled()
    collector = configure_gc(MemoryConfig(auto_gc_enabled=False, manual_collect_interval=1))
    assert collector.active and not gc.isenabled() and gc.get_threshold() == (5000, 50, 50)
    before = gc.get_stats()[1]["collections"]
    assert collector.tick() == 1
    assert gc.get_stats()[1]["collections"] == before + 1  # a real collection, seen by ProcessSampler


def test_pause_tracker_times_each_collection_by_generation():
    ticks = iter([10.0, 10.004, 20.0, 20.25])
    tracker = GCPauseTracker(clock=lambda: next(ticks))
    tracker("start", {"generation": 0})
    tracker("stop", {"generation": 0})
    tracker("start", {"generation": 2})
    tracker("stop", {"generation": 2})
    snap = tracker.snapshot()
    assert snap["collections"] == [1, 0, 1]
    assert snap["max_pause_ms"] == [pytest.approx(4.0), 0.0, pytest.approx(250.0)]


def test_pause_tracker_sees_real_collections():
    tracker = GCPauseTracker().install()
    try:
        gc.collect()
    finally:
        tracker.uninstall()
    assert tracker.collections[2] == 1 and tracker.max_pause_ms[2] > 0
    assert tracker not in gc.callbacks


def test_scheduled_full_collection_turns_automatic_full_collections_off(restore_gc):
    gc.set_threshold(700, 10, 10)
    previous = ScheduledFullCollection(300.0).apply()
    assert gc.get_threshold()[:2] == (700, 10) and gc.get_threshold()[2] >= 100_000 and gc.isenabled()
    previous.restore()
    assert gc.get_threshold() == (700, 10, 10)


def test_scheduled_full_collection_runs_once_per_interval():
    collected = []
    schedule = ScheduledFullCollection(300.0, collect=lambda gen: collected.append(gen) or 0)
    assert not schedule.due(1000.0)  # the first tick starts the clock
    assert not schedule.due(1299.9) and not schedule.collect(1299.9)
    assert schedule.due(1300.0)
    assert schedule.collect(1300.0) and collected == [2]
    assert not schedule.collect(1300.1), "two feeds asking for the same collection get one"
    assert schedule.collect(1600.0) and collected == [2, 2] and schedule.collections == 2
    with pytest.raises(ValueError):
        ScheduledFullCollection(0)
