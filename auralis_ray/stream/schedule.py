"""The station clock: chunk k is published at epoch + k * 100 ms, on an absolute schedule."""

from __future__ import annotations

import math

from .protocol import CHUNK_SECONDS


def publish_time(epoch: float, chunk_id: int) -> float:
    return epoch + chunk_id * CHUNK_SECONDS


def live_chunk_id(epoch: float, now: float) -> int:
    """The newest chunk whose publish time has come (-1 before the first)."""
    return math.floor((now - epoch) / CHUNK_SECONDS + 1e-9)
