"""AdaptiveRingBuffer and BufferTier: a listener's outbox with tier-based buffering.

Each listener owns one. The replica's fan-out writes references to the shared encoded chunks into
it (never copies of audio); the listener's sender drains it. Its tier sets the initial burst and the target the client should hold, and is
promoted or demoted from the listener's jitter and underrun rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from .jitter import JitterTracker

T = TypeVar("T")


@dataclass(frozen=True)
class BufferTier:
    """Configuration for a specific buffer tier."""

    target_ms: int
    description: str


# The one definition of the tiers, smallest first (the configuration and the edge take their names from here)
TIERS: dict[str, BufferTier] = {
    "minimal": BufferTier(target_ms=500, description="Stable network, low latency"),
    "normal": BufferTier(target_ms=1000, description="Default for new connections"),
    "stable": BufferTier(target_ms=2000, description="Occasional jitter"),
    "defensive": BufferTier(target_ms=3000, description="High jitter/unstable network"),
}
TIER_ORDER: tuple[str, ...] = tuple(TIERS)


class AdaptiveRingBuffer(Generic[T]):
    """Bounded FIFO ring with an adaptive tier."""

    TIERS = TIERS

    def __init__(
        self,
        capacity_chunks: int = 40,
        chunk_duration_ms: int = 100,
        initial_tier: str = "normal",
        jitter_tracker: JitterTracker | None = None,
        adaptive: bool = True,
        promote_underrun_rate: float = 0.05,
        demote_underrun_rate: float = 0.01,
        demote_jitter_ms: float = 10.0,
        demote_jitter_ms_minimal: float = 5.0,
        adjustment_interval_chunks: int = 50,
    ):
        if initial_tier not in TIERS:
            raise ValueError(f"unknown tier {initial_tier!r}")
        self.capacity = capacity_chunks
        self.chunk_duration_ms = chunk_duration_ms
        self.buffer: list[T | None] = [None] * capacity_chunks
        self.write_cursor = 0
        self.read_cursor = 0
        self.current_tier = initial_tier
        self.jitter_tracker = jitter_tracker or JitterTracker()
        self.adaptive = adaptive
        self.promote_underrun_rate = promote_underrun_rate
        self.demote_underrun_rate = demote_underrun_rate
        self.demote_jitter_ms = demote_jitter_ms
        self.demote_jitter_ms_minimal = demote_jitter_ms_minimal
        self.adjustment_interval_chunks = adjustment_interval_chunks
        self._window_start_chunks = 0
        self._window_start_underruns = 0
        self.reported_buffered_ms: float | None = None

    # ---- tier -----------------------------------------------------------------------------

    @property
    def target_buffer_ms(self) -> int:
        return TIERS[self.current_tier].target_ms

    @property
    def target_chunks(self) -> int:
        return self.target_buffer_ms // self.chunk_duration_ms

    def set_tier(self, tier: str) -> str:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}")
        previous, self.current_tier = self.current_tier, tier
        self._restart_window()
        return previous

    def _restart_window(self) -> None:
        self._window_start_chunks = self.jitter_tracker.total_chunks
        self._window_start_underruns = self.jitter_tracker.underrun_count

    def window_underrun_rate(self) -> float:
        chunks = self.jitter_tracker.total_chunks - self._window_start_chunks
        underruns = self.jitter_tracker.underrun_count - self._window_start_underruns
        return underruns / chunks if chunks else 0.0

    def adjust_tier(self) -> tuple[str, str] | None:
        """Promote on underruns, demote when calm; evaluated once per adjustment interval."""
        if not self.adaptive:
            return None
        chunks = self.jitter_tracker.total_chunks - self._window_start_chunks
        if chunks < self.adjustment_interval_chunks:
            return None
        rate = self.window_underrun_rate()
        jitter = self.jitter_tracker.get_current_jitter()
        index = TIER_ORDER.index(self.current_tier)
        new_index = index
        if rate > self.promote_underrun_rate and index < len(TIER_ORDER) - 1:
            new_index = index + 1
        elif rate < self.demote_underrun_rate and index > 0:
            limit = self.demote_jitter_ms_minimal if index == 1 else self.demote_jitter_ms
            if jitter < limit:
                new_index = index - 1
        self._restart_window()
        if new_index == index:
            return None
        previous = self.current_tier
        self.current_tier = TIER_ORDER[new_index]
        return previous, self.current_tier

    # ---- ring -----------------------------------------------------------------------------

    def get_depth(self) -> int:
        return self.write_cursor - self.read_cursor

    def is_full(self) -> bool:
        return self.get_depth() >= self.capacity

    def write_chunk(self, chunk: T) -> bool:
        """Append; False (nothing written) when full: the caller decides how to catch up."""
        if self.is_full():
            return False
        self.buffer[self.write_cursor % self.capacity] = chunk
        self.write_cursor += 1
        return True

    def read_chunk(self) -> T | None:
        if self.read_cursor >= self.write_cursor:
            return None
        slot = self.read_cursor % self.capacity
        chunk, self.buffer[slot] = self.buffer[slot], None
        self.read_cursor += 1
        return chunk

    def clear(self) -> int:
        dropped = self.get_depth()
        while self.read_chunk() is not None:
            pass
        return dropped

    # ---- health ---------------------------------------------------------------------------

    def get_buffer_health(self) -> dict:
        rate = self.jitter_tracker.get_underrun_rate()
        jitter = self.jitter_tracker.get_current_jitter()
        if self.reported_buffered_ms is not None:
            depth = self.reported_buffered_ms / self.chunk_duration_ms
        else:
            depth = float(self.get_depth())
        if rate > self.promote_underrun_rate:
            status = "critical"
        elif rate > self.demote_underrun_rate or jitter > self.target_buffer_ms / 4:
            status = "warning"
        else:
            status = "healthy"
        return {
            "current_depth_chunks": round(depth, 2),
            "target_depth_chunks": self.target_chunks,
            "current_tier": self.current_tier,
            "jitter_ms": round(jitter, 3),
            "underrun_rate": round(rate, 5),
            "health_status": status,
        }
