"""StationCore: one station's encoded timeline, without Ray.

Synthesis pushes PCM blocks; each chunk is encoded once (both wire forms) into a ring keyed by
chunk_id, and chunk k is stamped for publication at epoch + k * 100 ms. Replicas fetch by chunk_id.
The Ray actor (`actors/station.py`) only carries calls to and from it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np

from .broadcast import BroadcastRingBuffer
from .pool import AudioChunkPool
from .protocol import CHUNK_BYTES
from .schedule import live_chunk_id, publish_time
from .settings import StationSettings


class StationCore:
    """One station's timeline: ingests rendered PCM, encodes each chunk once, serves replicas' fetches."""

    def __init__(self, name: str, epoch: float, settings: StationSettings,
                 on_encode: Callable[[float], None] | None = None):
        self.name = name
        self.epoch = epoch
        self.ring = BroadcastRingBuffer(settings.ring_capacity_chunks + settings.lookahead_chunks + 20,
                                        settings.catchup_behind_chunks)
        self.pool = AudioChunkPool(settings.chunk_pool_size)
        self.on_encode = on_encode
        self.attach_points: deque[int] = deque(maxlen=8)
        self.refused_pushes = 0
        self.crossfade_chunks = settings.restart_crossfade_chunks
        self.prefetch_chunks = settings.replica_prefetch_chunks
        self.served_upto = -1  # the newest chunk_id a replica may have fetched
        self.crossfades = 0

    def ingest(self, first_chunk_id: int, pcm: bytes) -> int:
        """Store consecutive chunks rendered by synthesis; returns the next chunk_id wanted.

        Only a continuation is accepted: a block that starts at or before what is held, or exactly at
        a point this station instance asked synthesis to continue from. A push from a timeline this
        instance never asked for (in flight across a restart) would leave a hole, and is refused. A
        new timeline that starts inside what is held (a restarted synthesis actor, see
        `next_needed_chunk`) is crossfaded into the held chunks it overlaps.
        """
        if len(pcm) % CHUNK_BYTES:
            raise ValueError(f"PCM length {len(pcm)} is not a whole number of chunks")
        held_to = self.ring.write_position
        attached = first_chunk_id in self.attach_points
        if attached:
            self.attach_points.remove(first_chunk_id)  # used once: a retried delivery is a duplicate
            if held_to is not None and self.served_upto < first_chunk_id < held_to:
                self._crossfade(first_chunk_id, pcm[:(held_to - first_chunk_id) * CHUNK_BYTES])
        continues = held_to is not None and first_chunk_id <= held_to
        if not continues and not attached:
            self.refused_pushes += 1
            if held_to is not None:
                return held_to
            return self.attach_points[-1] if self.attach_points else -1
        for i in range(len(pcm) // CHUNK_BYTES):
            cid = first_chunk_id + i
            if held_to is not None and cid < held_to:
                continue
            start = time.perf_counter()
            chunk = self.pool.encode_chunk(cid, publish_time(self.epoch, cid), pcm[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES])
            if self.on_encode is not None:
                self.on_encode(time.perf_counter() - start)
            self.ring.write_chunk(chunk)
        return self.ring.write_position

    def _crossfade(self, first_chunk_id: int, new_pcm: bytes) -> None:
        """Blend a new timeline's first chunks into the held end of the old one (equal power), in place."""
        held = [self.ring.get(cid) for cid in range(first_chunk_id, first_chunk_id + len(new_pcm) // CHUNK_BYTES)]
        if not held or any(chunk is None for chunk in held):
            return  # nothing whole to blend into: a plain continuation
        old = b"".join(chunk.pcm for chunk in held)
        a = np.frombuffer(old, "<i2").reshape(-1, 2).astype(np.float32)
        b = np.frombuffer(new_pcm, "<i2").reshape(-1, 2).astype(np.float32)
        t = (np.arange(len(a), dtype=np.float32) + 0.5)[:, None] * (np.float32(np.pi / 2) / len(a))
        mixed = np.clip(np.rint(a * np.cos(t) + b * np.sin(t)), -32767, 32767).astype("<i2").tobytes()
        for i in range(len(mixed) // CHUNK_BYTES):
            cid = first_chunk_id + i
            self.ring.replace(self.pool.encode_chunk(cid, publish_time(self.epoch, cid),
                                                     mixed[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES]))
        self.crossfades += 1

    def fetch(self, after_id: int, horizon_chunks: int, now: float) -> list[tuple]:
        """Encoded chunks with id > after_id, up to `horizon_chunks` past the live edge."""
        upto = live_chunk_id(self.epoch, now) + horizon_chunks
        chunks = self.ring.chunks_after(after_id, upto)
        if chunks:
            self.served_upto = max(self.served_upto, chunks[-1].chunk_id)
        return [c.to_wire() for c in chunks]

    def next_needed_chunk(self, now: float) -> int:
        """Where synthesis should continue this station's timeline; remembered as an attach point.

        While the station holds audio that no replica has fetched yet, the point lies
        `buffer.restart_crossfade_chunks` before its end, so the new timeline can be crossfaded in.

        Both actors may ask at start (the station announcing itself, synthesis asking after its own
        start), so every recent point handed out is accepted, not only the last.
        """
        live = live_chunk_id(self.epoch, now)
        held = self.ring.write_position
        point = max(live + 2, held if held is not None else 0)
        if held is not None and self.crossfade_chunks:
            overlap_from = held - self.crossfade_chunks
            # only over chunks no replica can have fetched yet (with a tick's margin)
            if overlap_from > max(self.served_upto, live + self.prefetch_chunks) + 1:
                point = overlap_from
        self.attach_points.append(point)
        return point

    def info(self, now: float) -> dict:
        live = live_chunk_id(self.epoch, now)
        latest = self.ring.latest_id
        return {
            "name": self.name,
            "epoch": self.epoch,
            "live_chunk_id": live,
            "rendered_until": latest,
            "lookahead_chunks": None if latest is None else latest - live,
            "ready": self.ring.holds(live),
            "encoded_chunks": self.pool.encoded_count,
            "refused_pushes": self.refused_pushes,
            "crossfades": self.crossfades,
        }
