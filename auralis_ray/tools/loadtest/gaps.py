"""Gap detection on a listener's chunk_id sequence (docs/PROTOCOL.md: "Timing promises").

chunk_ids must increase by exactly one. A jump is allowed only right after an
`error` `BUFFER_OVERRUN`: that is an announced skip. Any other jump is an unannounced
gap; a chunk_id that does not increase at all is out of order (a duplicate or a
step back), also a protocol violation.
"""

from __future__ import annotations

from enum import Enum


class Step(Enum):
    """What one received chunk_id was, relative to the one before."""

    FIRST = "first"
    NEXT = "next"
    ANNOUNCED_SKIP = "announced_skip"
    UNANNOUNCED_GAP = "unannounced_gap"
    OUT_OF_ORDER = "out_of_order"


class GapDetector:
    """Classifies a listener's chunk_ids as they arrive and counts gaps, skips and disorder."""

    def __init__(self) -> None:
        self.last_chunk_id: int | None = None
        self.overrun_pending = False
        self.unannounced_gaps = 0
        self.missing_chunks = 0  # chunks lost in unannounced gaps
        self.announced_skips = 0
        self.skipped_chunks = 0  # chunks jumped over in announced skips
        self.out_of_order = 0

    def on_buffer_overrun(self) -> None:
        """The server sent `error` `BUFFER_OVERRUN`: the next jump is announced."""
        self.overrun_pending = True

    def on_chunk(self, chunk_id: int) -> Step:
        last = self.last_chunk_id
        announced = self.overrun_pending
        self.overrun_pending = False
        if last is None:
            self.last_chunk_id = chunk_id
            return Step.FIRST
        if chunk_id <= last:
            self.out_of_order += 1
            return Step.OUT_OF_ORDER  # last_chunk_id stays: the stream must pass it
        self.last_chunk_id = chunk_id
        jump = chunk_id - last - 1
        if jump == 0:
            return Step.NEXT
        if announced:
            self.announced_skips += 1
            self.skipped_chunks += jump
            return Step.ANNOUNCED_SKIP
        self.unannounced_gaps += 1
        self.missing_chunks += jump
        return Step.UNANNOUNCED_GAP
