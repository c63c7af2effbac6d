"""A rate over a sliding time window, for gauges such as `phrase_generation_rate_hz`.

A gauge set to a configured or constant value says nothing; this one counts real events
(`tick(now)` per phrase rendered) and reports events per second over the last `window_sec`.
"""

from __future__ import annotations

from collections import deque


class RateMeter:
    """Events per second over the last `window_sec`, from `tick(now)` calls."""

    def __init__(self, window_sec: float) -> None:
        if window_sec <= 0:
            raise ValueError(f"window_sec must be > 0, got {window_sec}")
        self.window_sec = window_sec
        self._events: deque[tuple[float, int]] = deque()

    def tick(self, now: float, n: int = 1) -> None:
        self._events.append((now, n))
        self._expire(now)

    def rate(self, now: float) -> float:
        """Events per second over the window ending at `now` (0 with no events in it)."""
        self._expire(now)
        return sum(n for _, n in self._events) / self.window_sec

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window_sec:
            self._events.popleft()
