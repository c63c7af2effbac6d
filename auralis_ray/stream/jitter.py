"""JitterTracker: EMA mean and variance of chunk delivery lateness."""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

# One-sided normal quantiles for the confidence levels operators ask for.
_Z = {0.90: 1.2816, 0.95: 1.6449, 0.99: 2.3263, 0.999: 3.0902}


class ChunkTimestamp(NamedTuple):
    """Tracks individual chunk delivery timing (the view `JitterTracker.history()` gives)."""

    chunk_id: int
    expected_time: float
    actual_time: float

    @property
    def jitter_ms(self) -> float:
        return abs(self.actual_time - self.expected_time) * 1000


class JitterTracker:
    """Exponential moving average of delivery jitter.

    The recommended buffer is mean + k·σ with k the one-sided normal quantile of the confidence
    (how much buffer covers that share of late chunks). The window holds plain tuples of numbers, which CPython's cycle collector stops tracking: a
    replica with 1,000 listeners keeps 50,000 of them, and as `ChunkTimestamp`s (a tuple subclass,
    always tracked) they made every full collection of the fan-out loop measurably longer.
    """

    def __init__(self, window_size: int = 50, alpha: float = 0.1):
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.window_size = window_size
        self.alpha = alpha
        self.timestamps: deque[tuple[int, float, float]] = deque(maxlen=window_size)
        self.mean_jitter_ms = 0.0
        self.variance_jitter_ms = 0.0
        self.total_chunks = 0
        self.underrun_count = 0

    def record_chunk(self, expected_time: float, actual_time: float, chunk_id: int = -1) -> float:
        self.timestamps.append((chunk_id, expected_time, actual_time))
        x = abs(actual_time - expected_time) * 1000
        if self.total_chunks == 0:
            self.mean_jitter_ms = x
        else:
            delta = x - self.mean_jitter_ms
            self.mean_jitter_ms += self.alpha * delta
            self.variance_jitter_ms = (1 - self.alpha) * (self.variance_jitter_ms + self.alpha * delta * delta)
        self.total_chunks += 1
        return x

    def history(self) -> list[ChunkTimestamp]:
        """The window, oldest first."""
        return [ChunkTimestamp(*sample) for sample in self.timestamps]

    def record_underrun(self, count: int = 1) -> None:
        self.underrun_count += count

    def get_current_jitter(self) -> float:
        return self.mean_jitter_ms

    def get_jitter_std(self) -> float:
        return math.sqrt(max(self.variance_jitter_ms, 0.0))

    def get_recommended_buffer_ms(self, confidence: float = 0.95) -> float:
        k = _Z.get(confidence)
        if k is None:
            raise ValueError(f"confidence must be one of {sorted(_Z)}")
        return self.mean_jitter_ms + k * self.get_jitter_std()

    def get_underrun_rate(self) -> float:
        return self.underrun_count / self.total_chunks if self.total_chunks else 0.0
