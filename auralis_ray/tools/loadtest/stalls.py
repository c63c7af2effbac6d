"""Silences in a listener's stream: how long it went without receiving anything, once audio flowed.

Pure: fed the arrival time of everything a listener receives, and the time its stream ended.
A silence longer than `stall_s` is a stall: a player with less than that buffered falls silent.
"""

from __future__ import annotations


class StallDetector:
    """Counts the silences longer than `stall_s` between arrivals, and keeps the longest silence."""

    def __init__(self, stall_s: float = 1.0) -> None:
        if stall_s <= 0:
            raise ValueError("stall_s must be positive")
        self.stall_s = stall_s
        self.stalls = 0
        self.longest_silence_s = 0.0
        self.last_arrival: float | None = None
        self.ended = False

    def on_arrival(self, t: float) -> None:
        """Something arrived at `t` (the first arrival starts the watch)."""
        if self.ended:
            return
        if self.last_arrival is not None:
            self._silence(t - self.last_arrival)
            t = max(t, self.last_arrival)
        self.last_arrival = t

    def end(self, t: float) -> None:
        """The stream ended at `t` (the run is over or the connection closed): the silence since the last
        arrival counts too."""
        if self.ended:
            return
        if self.last_arrival is not None:
            self._silence(t - self.last_arrival)
        self.ended = True

    def _silence(self, seconds: float) -> None:
        if seconds > self.longest_silence_s:
            self.longest_silence_s = seconds
        if seconds > self.stall_s:
            self.stalls += 1
