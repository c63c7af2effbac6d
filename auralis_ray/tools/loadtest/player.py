"""A simulated audio player: what a listener would hear, given when chunks arrived.

Pure: it never reads a clock. Feed it `push(now)` for every chunk that arrives and
`advance(now)` whenever time passes; it counts underruns.

Model: the player waits until it holds `prebuffer_chunks` chunks, then starts playing
and takes one chunk from its buffer every `chunk_s` seconds of wall time, starting at
the moment playback starts. If a chunk is needed and the buffer is empty, that is an
underrun: playback stops and the player prebuffers again. A chunk that arrives at the
very instant it is needed is in time.
"""

from __future__ import annotations


class SimulatedPlayer:
    """A listener's player, simulated from chunk arrival times (see the module docstring)."""

    def __init__(self, prebuffer_chunks: int = 5, chunk_s: float = 0.1) -> None:
        if prebuffer_chunks < 1:
            raise ValueError("prebuffer_chunks must be at least 1")
        if chunk_s <= 0:
            raise ValueError("chunk_s must be positive")
        self.prebuffer_chunks = prebuffer_chunks
        self.chunk_s = chunk_s
        self.buffered = 0
        self.playing = False
        self.underruns = 0
        self.played = 0
        self.starts = 0
        self.max_buffered = 0
        self._next_due = 0.0  # wall time the next chunk is taken, while playing
        self._last_now = float("-inf")

    def push(self, now: float) -> None:
        """A chunk arrived at `now`."""
        self.advance(now)
        self.buffered += 1
        if self.buffered > self.max_buffered:
            self.max_buffered = self.buffered
        if not self.playing and self.buffered >= self.prebuffer_chunks:
            self.playing = True
            self.starts += 1
            self._take()
            self._next_due = now + self.chunk_s

    def advance(self, now: float) -> None:
        """Play every chunk due strictly before `now`."""
        if now < self._last_now:
            raise ValueError(f"time went backwards: {now} < {self._last_now}")
        self._last_now = now
        while self.playing and self._next_due < now:
            if self.buffered == 0:
                self.underruns += 1
                self.playing = False
                break
            self._take()
            self._next_due += self.chunk_s

    def buffered_ms(self) -> float:
        return self.buffered * self.chunk_s * 1000.0

    def _take(self) -> None:
        self.buffered -= 1
        self.played += 1
