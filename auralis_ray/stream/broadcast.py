"""BroadcastRingBuffer and ClientCursor: one copy of each chunk, many readers.

Positions are absolute `chunk_id`s (the slot is `chunk_id % capacity`), so "empty" and "full" never
look alike, a cursor survives wrap-around, and resume-by-id is a lookup. The single writer and the
readers share one event loop, so no locks are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .pool import EncodedChunk


@dataclass
class ClientCursor:
    """Per-client read position in the shared ring."""

    client_id: str
    read_position: int  # next chunk_id this client reads
    last_read_time: float
    chunks_read: int = 0
    buffer_underruns: int = 0
    overruns: int = 0


class Overrun(NamedTuple):
    """The cursor was moved forward: chunks skipped_from .. skipped_to-1 will never be sent."""

    skipped_from: int
    skipped_to: int


class BroadcastRingBuffer:
    """Ring of encoded chunks keyed by chunk_id, with per-client cursors."""

    def __init__(self, capacity_chunks: int = 300, catchup_behind: int = 5):
        if capacity_chunks < 2 or not 0 < catchup_behind < capacity_chunks:
            raise ValueError("capacity_chunks must be >= 2 and 0 < catchup_behind < capacity_chunks")
        self.capacity = capacity_chunks
        self.catchup_behind = catchup_behind
        self.slots: list[EncodedChunk | None] = [None] * capacity_chunks
        self.write_position: int | None = None  # next chunk_id to write
        self.first_written: int | None = None
        self.client_cursors: dict[str, ClientCursor] = {}

    # ---- writer ---------------------------------------------------------------------------

    def write_chunk(self, chunk: EncodedChunk) -> int:
        """Store a chunk. Ids must not go backwards; a forward jump leaves a hole readers skip."""
        cid = chunk.chunk_id
        if self.write_position is not None and cid < self.write_position:
            held = self.get(cid)
            if held is not None:
                return cid  # a duplicate delivery: keep the first
            raise ValueError(f"chunk {cid} is older than the ring's write position {self.write_position}")
        if self.first_written is None:
            self.first_written = cid
        if self.write_position is not None:
            for missing in range(self.write_position, min(cid, self.write_position + self.capacity)):
                self.slots[missing % self.capacity] = None
        self.slots[cid % self.capacity] = chunk
        self.write_position = cid + 1
        return cid

    # ---- lookups --------------------------------------------------------------------------

    @property
    def latest_id(self) -> int | None:
        return None if self.write_position is None else self.write_position - 1

    @property
    def oldest_id(self) -> int | None:
        if self.write_position is None:
            return None
        return max(self.first_written, self.write_position - self.capacity)

    def get(self, chunk_id: int) -> EncodedChunk | None:
        if self.write_position is None or not self.write_position - self.capacity <= chunk_id < self.write_position:
            return None
        chunk = self.slots[chunk_id % self.capacity]
        return chunk if chunk is not None and chunk.chunk_id == chunk_id else None

    def replace(self, chunk: EncodedChunk) -> None:
        """Put a new version of a held chunk in its place (readers that already took it keep theirs)."""
        if not self.holds(chunk.chunk_id):
            raise KeyError(f"chunk {chunk.chunk_id} is not held")
        self.slots[chunk.chunk_id % self.capacity] = chunk

    def holds(self, chunk_id: int) -> bool:
        return self.get(chunk_id) is not None

    def holds_range(self, first: int, last: int) -> bool:
        return all(self.holds(i) for i in range(first, last + 1))

    def chunks_after(self, after_id: int, up_to_id: int | None = None, limit: int | None = None) -> list[EncodedChunk]:
        if self.write_position is None:
            return []
        end = self.write_position - 1 if up_to_id is None else min(up_to_id, self.write_position - 1)
        start = max(after_id + 1, self.write_position - self.capacity)
        out = []
        for cid in range(start, end + 1):
            chunk = self.get(cid)
            if chunk is not None:
                out.append(chunk)
                if limit is not None and len(out) >= limit:
                    break
        return out

    # ---- readers --------------------------------------------------------------------------

    def register_client(self, client_id: str, start_position: int | None, now: float) -> ClientCursor:
        start = (self.write_position or 0) if start_position is None else start_position
        cursor = ClientCursor(client_id, start, now)
        self.client_cursors[client_id] = cursor
        return cursor

    def unregister_client(self, client_id: str) -> None:
        self.client_cursors.pop(client_id, None)

    def available(self, client_id: str) -> int:
        cursor = self.client_cursors[client_id]
        return 0 if self.write_position is None else max(0, self.write_position - cursor.read_position)

    def read_chunk(self, client_id: str, now: float) -> EncodedChunk | Overrun | None:
        """Next chunk for the client, an Overrun when it had to be moved forward, or None."""
        cursor = self.client_cursors[client_id]
        if self.write_position is None or cursor.read_position >= self.write_position:
            return None
        behind = self.write_position - cursor.read_position
        if behind >= self.capacity - 1:
            return self._jump(cursor, self.write_position - self.catchup_behind)
        chunk = self.get(cursor.read_position)
        if chunk is None:  # a hole (the writer restarted further on): go to the next held chunk
            nxt = next((c for c in range(cursor.read_position + 1, self.write_position) if self.holds(c)), None)
            return self._jump(cursor, self.write_position if nxt is None else nxt)
        cursor.read_position += 1
        cursor.chunks_read += 1
        cursor.last_read_time = now
        return chunk

    def move_to(self, client_id: str, position: int) -> Overrun | None:
        cursor = self.client_cursors[client_id]
        if position <= cursor.read_position:
            return None
        return self._jump(cursor, position)

    def _jump(self, cursor: ClientCursor, position: int) -> Overrun:
        skipped = Overrun(cursor.read_position, position)
        cursor.read_position = position
        cursor.overruns += 1
        return skipped

    def get_client_stats(self, client_id: str) -> dict:
        cursor = self.client_cursors[client_id]
        return {
            "client_id": client_id,
            "read_position": cursor.read_position,
            "behind_chunks": self.available(client_id),
            "chunks_read": cursor.chunks_read,
            "buffer_underruns": cursor.buffer_underruns,
            "overruns": cursor.overruns,
            "last_read_time": cursor.last_read_time,
        }
