"""Garbage-collector settings for the long-lived actors.

CPython's default thresholds run a young collection every 700 net allocations; a synthesis loop that
allocates many small objects per block then pays collections in the middle of rendering. Raising the
thresholds (or turning automatic collection off) moves that work to moments the actor chooses.

With automatic collection off, `GCCollector` collects generations 0-1 every
`manual_collect_interval` renders and does a full collection only every
`manual_full_collect_every`-th time: a full collection traverses the whole heap (torch, Ray, numpy
objects included), so its pause grows with the process, while the garbage of a render loop is
almost all young. Collections show up in `gc_collections_total` through `ProcessSampler`.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Callable

from auralis_ray.config import MemoryConfig

_DEFAULTS = MemoryConfig()  # the configuration tree's `memory` section owns every default


@dataclass(frozen=True)
class GCConfig:
    """Garbage collection configuration: the `memory.gc_*` settings as one value."""

    gen0_threshold: int = _DEFAULTS.gc_gen0_threshold  # CPython's default: 700
    gen1_threshold: int = _DEFAULTS.gc_gen1_threshold  # CPython's default: 10
    gen2_threshold: int = _DEFAULTS.gc_gen2_threshold  # CPython's default: 10
    auto_gc_enabled: bool = _DEFAULTS.auto_gc_enabled
    manual_collect_interval: int = _DEFAULTS.manual_collect_interval  # collect every N renders
    manual_full_collect_every: int = _DEFAULTS.manual_full_collect_every  # every Nth collection is a full one

    @classmethod
    def from_memory_config(cls, config: MemoryConfig) -> "GCConfig":
        return cls(
            gen0_threshold=config.gc_gen0_threshold,
            gen1_threshold=config.gc_gen1_threshold,
            gen2_threshold=config.gc_gen2_threshold,
            auto_gc_enabled=config.auto_gc_enabled,
            manual_collect_interval=config.manual_collect_interval,
            manual_full_collect_every=config.manual_full_collect_every,
        )


@dataclass(frozen=True)
class GCState:
    """What `apply_gc_config` replaced, so it can be restored."""

    threshold: tuple[int, ...]
    enabled: bool

    def restore(self) -> None:
        gc.set_threshold(*self.threshold)
        (gc.enable if self.enabled else gc.disable)()


def apply_gc_config(config: GCConfig) -> GCState:
    """Apply thresholds and the automatic-GC switch; return the previous state."""
    previous = GCState(gc.get_threshold(), gc.isenabled())
    gc.set_threshold(config.gen0_threshold, config.gen1_threshold, config.gen2_threshold)
    (gc.enable if config.auto_gc_enabled else gc.disable)()
    return previous


class GCCollector:
    """Call `tick()` once per unit of the actor's work (a render, a fetch); collects every
    `manual_collect_interval` ticks when automatic GC is off (see module doc)."""

    def __init__(
        self,
        config: GCConfig,
        *,
        collect: Callable[[int], int] = gc.collect,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.active = not config.auto_gc_enabled
        self.interval = config.manual_collect_interval
        self.full_every = config.manual_full_collect_every
        self._collect = collect
        self._clock = clock
        self.ticks = 0
        self.collections = 0
        self.full_collections = 0
        self.last_pause_sec = 0.0
        self.max_pause_sec = 0.0

    def tick(self) -> int | None:
        """Count one unit of work; return the generation collected now, or None."""
        if not self.active:
            return None
        self.ticks += 1
        if self.ticks % self.interval:
            return None
        self.collections += 1
        generation = 2 if self.collections % self.full_every == 0 else 1
        self.full_collections += generation == 2
        start = self._clock()
        self._collect(generation)
        self.last_pause_sec = self._clock() - start
        self.max_pause_sec = max(self.max_pause_sec, self.last_pause_sec)
        return generation


def configure_gc(config: MemoryConfig) -> GCCollector:
    """The one call an actor makes at start: apply the GC settings if tuning is enabled and return
    the collector to tick per unit of work (inactive when tuning is off or automatic GC stays on)."""
    gc_config = GCConfig.from_memory_config(config)
    if not config.enable_gc_tuning:
        return GCCollector(GCConfig(auto_gc_enabled=True))
    apply_gc_config(gc_config)
    return GCCollector(gc_config)


# A generation-2 threshold no process reaches: gen 1 runs ~1/s under load, so this is days.
NO_AUTOMATIC_FULL_COLLECTION = 1_000_000


class ScheduledFullCollection:
    """Full collections when the fan-out says so, not when the allocator does (the ingress's GC).

    Automatic full collections start whenever the old generation has grown by a quarter, which is
    all through a ramp of new listeners, and each one stops the event loop for the whole heap
    (measured: first audio p99 192 ms at 1,000 listeners with them, 48 ms without). Here young
    collections stay automatic and short, automatic full ones are switched off, and the fan-out
    asks `due` after each tick and queues `collect` behind the tick's other work: one full
    collection every `interval_sec`, at the moment the next tick is furthest away. Garbage cycles
    wait at most that long.
    """

    def __init__(
        self,
        interval_sec: float,
        *,
        collect: Callable[[int], int] = gc.collect,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if interval_sec <= 0:
            raise ValueError("interval_sec must be positive")
        self.interval_sec = interval_sec
        self._collect = collect
        self._clock = clock
        self.last_at: float | None = None
        self.collections = 0
        self.last_pause_sec = 0.0

    def apply(self) -> GCState:
        """Keep the young thresholds, switch automatic full collections off; return what was before."""
        young0, young1, _ = gc.get_threshold()
        return apply_gc_config(GCConfig(young0, young1, NO_AUTOMATIC_FULL_COLLECTION, auto_gc_enabled=True))

    def due(self, now: float) -> bool:
        """Whether a full collection is due at `now` (the first call only starts the clock)."""
        if self.last_at is None:
            self.last_at = now
        return now - self.last_at >= self.interval_sec

    def collect(self, now: float) -> bool:
        """Run the full collection if it is still due (several feeds may ask for the same one)."""
        if not self.due(now):
            return False
        self.last_at = now
        start = self._clock()
        self._collect(2)
        self.last_pause_sec = self._clock() - start
        self.collections += 1
        return True


class GCPauseTracker:
    """Times every collection through `gc.callbacks`: count and longest pause per generation.

    An event loop that fans audio out every 100 ms cannot hide a pause: a full collection of a heap
    holding a thousand listeners stops every listener at once, so the longest pause is the figure
    to watch (`/api/metrics` → `gc`).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        self.collections = [0, 0, 0]
        self.max_pause_ms = [0.0, 0.0, 0.0]
        self.last_pause_ms = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        if self._started is None:
            return
        generation = int(info.get("generation", 2))
        pause_ms = (self._clock() - self._started) * 1000.0
        self._started = None
        self.collections[generation] += 1
        self.last_pause_ms[generation] = pause_ms
        self.max_pause_ms[generation] = max(self.max_pause_ms[generation], pause_ms)

    def install(self) -> "GCPauseTracker":
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def snapshot(self) -> dict:
        return {
            "collections": list(self.collections),
            "max_pause_ms": [round(v, 3) for v in self.max_pause_ms],
            "last_pause_ms": [round(v, 3) for v in self.last_pause_ms],
            "frozen_objects": gc.get_freeze_count(),
        }
