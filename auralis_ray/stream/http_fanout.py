"""The HTTP stream listeners' fan-out on a replica, without I/O: which listeners write at which chunk
(`WriteWheel`), and the bytes of a tick's common write, joined once for all of them (`LiveSpans`).

A listener writes every `chunks_per_write` chunks, so on most ticks most listeners have nothing to
send. The wheel files each listener under the chunk whose publication makes its next write due; a
tick visits only the listeners filed at or before the newest chunk. The listeners that write the
same chunks in the same framing get the same bytes object: a tick joins each span once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Generic, TypeVar

from .broadcast import BroadcastRingBuffer

Item = TypeVar("Item")

# a replica's ring holds at most a few spans in use at once (one per write phase and format); past
# this many the memo starts again
SPANS_HELD = 32


CRLF = b"\r\n"


@functools.lru_cache(maxsize=4096)
def chunk_size_line(size: int) -> bytes:
    """The line that opens a chunk of `size` bytes in HTTP/1.1's chunked transfer coding."""
    return b"%x\r\n" % size


def chunked_body(body: bytes) -> bytes:
    """`body` as one chunk of the chunked transfer coding (nothing for no bytes: an empty chunk ends
    the body)."""
    return chunk_size_line(len(body)) + body + CRLF if body else b""


class WriteWheel(Generic[Item]):
    """Items (listeners) by name, each filed under the chunk_id at whose publication it is due next."""

    def __init__(self):
        self._slots: dict[int, dict[str, Item]] = {}
        self._due_at: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._due_at)

    def __contains__(self, name: str) -> bool:
        return name in self._due_at

    def schedule(self, name: str, item: Item, due_id: int) -> None:
        """File `item` under `due_id` (in place of where it was)."""
        self.remove(name)
        self._slots.setdefault(due_id, {})[name] = item
        self._due_at[name] = due_id

    def remove(self, name: str) -> None:
        due_id = self._due_at.pop(name, None)
        if due_id is not None:
            slot = self._slots[due_id]
            del slot[name]
            if not slot:
                del self._slots[due_id]

    def due_at(self, name: str) -> int | None:
        return self._due_at.get(name)

    def pop_due(self, latest_id: int) -> list[Item]:
        """Take out every item filed at or before `latest_id`, the earliest first."""
        due = sorted(due_id for due_id in self._slots if due_id <= latest_id)
        items: list[Item] = []
        for due_id in due:
            slot = self._slots.pop(due_id)
            for name in slot:
                del self._due_at[name]
            items.extend(slot.values())
        return items


@dataclass(frozen=True)
class LiveSpan:
    """The compressed bodies of chunks `first` .. `end` - 1 of one format, joined: a common write."""

    first: int
    end: int
    body: bytes  # the bodies, as they go out without framing
    chunked: bytes  # the same as one chunk of the chunked transfer coding
    ogg_header: bytes | None  # Ogg Opus: the header pages of the stream every chunk belongs to


class LiveSpans:
    """Memo of `LiveSpan`s over one ring, by (format, first, end). A chunk's compressed forms never
    change once fetched, so a span stays valid; the memo holds the few in use."""

    def __init__(self, ring: BroadcastRingBuffer):
        self.ring = ring
        self._spans: dict[tuple[bool, int, int], LiveSpan] = {}

    def get(self, mp3: bool, first: int, end: int) -> LiveSpan | None:
        """The span of chunks `first` .. `end` - 1 in MP3 (`mp3`) or as Ogg pages; None where a chunk is
        not held, has no compressed forms, or (Ogg) the chunks belong to different Ogg streams."""
        key = (mp3, first, end)
        span = self._spans.get(key)
        if span is not None:
            return span
        bodies = []
        header = None
        for chunk_id in range(first, end):
            chunk = self.ring.get(chunk_id)
            forms = None if chunk is None else chunk.compressed
            if forms is None:
                return None
            if mp3:
                bodies.append(forms.mp3)
            else:
                if header is not None and forms.ogg_header != header:
                    return None
                header = forms.ogg_header
                bodies.append(forms.ogg_pages)
        body = b"".join(bodies)
        span = LiveSpan(first, end, body, chunked_body(body), header)
        if len(self._spans) >= SPANS_HELD:
            self._spans.clear()
        self._spans[key] = span
        return span
