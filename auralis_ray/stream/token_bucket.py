"""TokenBucket: flow control with the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Token bucket rate limiter.

    `now` is an argument of every method (no hidden clock), and the bucket starts at the time of
    its first use rather than at construction.
    """

    capacity: int
    refill_rate: float
    tokens: float = field(default=-1.0)
    last_refill: float | None = None

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_rate <= 0:
            raise ValueError("capacity must be >= 1 and refill_rate > 0")
        if self.tokens < 0:
            self.tokens = float(self.capacity)

    def _refill(self, now: float) -> None:
        if now == self.last_refill:
            return  # nothing elapsed (every listener of a tick asks at the same `now`)
        if self.last_refill is None or now < self.last_refill:
            self.last_refill = now
            return
        self.tokens = min(float(self.capacity), self.tokens + (now - self.last_refill) * self.refill_rate)
        self.last_refill = now

    def consume(self, now: float, tokens: int = 1) -> bool:
        self._refill(now)
        if self.tokens >= tokens:
            self.tokens -= tokens
            return True
        return False

    def available(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)

    def get_wait_time(self, now: float, tokens: int = 1) -> float:
        self._refill(now)
        missing = tokens - self.tokens
        return 0.0 if missing <= 0 else missing / self.refill_rate
