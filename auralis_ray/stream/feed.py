"""FeedCore: one station's chunks on one replica, between its station actor and its listeners.

A replica fetches a station's encoded chunks ahead of their time (one call a fetch interval) and
publishes chunk k at epoch + k * 100 ms into its own BroadcastRingBuffer, from which every listener
of the replica reads. This core holds what that takes: the ring, the fetched chunks waiting for
their time, the station's epoch, readiness, and a record of the last minute's publish ticks. The
caller passes `now` and the fetched chunks; `serve/hub.py` runs the loops and the sockets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

from .broadcast import BroadcastRingBuffer
from .pool import EncodedChunk
from .protocol import CHUNK_DURATION_MS, CHUNK_SECONDS
from .schedule import live_chunk_id
from .settings import FeedSettings

# a feed more than this many chunks behind the live edge is not ready (publishing has fallen behind)
READY_MAX_BEHIND_CHUNKS = 5
# publish ticks kept for the tick statistics: one minute at one tick per chunk
TICK_HISTORY = 60_000 // CHUNK_DURATION_MS


@dataclass(frozen=True, slots=True)
class TickRecord:
    """One publish tick: the newest chunk it published, when, how late, how long the fan-out took,
    and to how many listeners."""

    chunk_id: int
    published_at: float
    publish_lateness_ms: float
    fanout_ms: float
    listeners: int


@dataclass(frozen=True)
class FeedStatus:
    """Where a feed stands at one moment: the live edge, what it published, whether it is ready."""

    live_chunk_id: int | None  # None until the station's epoch is known
    latest_published: int | None
    ready: bool
    ahead_chunks: int | None  # how far past the live edge this replica holds audio
    published_chunks: int
    fetch_failures: int  # consecutive failed fetches (0 once the station answers again)
    seconds_since_station_answered: float | None


class FeedCore:
    """One station's timeline on a replica: merges fetches, chooses due chunks, judges readiness."""

    def __init__(self, settings: FeedSettings):
        self.settings = settings
        self.ring = BroadcastRingBuffer(settings.ring_capacity_chunks, settings.catchup_behind_chunks)
        self.pending: deque[EncodedChunk] = deque()  # fetched, waiting for their publish time, in order
        self.epoch: float | None = None
        self.fetched = False  # whether a fetch has been answered yet
        self.fetch_failures = 0
        self.last_fetch_ok: float | None = None
        self.published = 0
        self.ticks: deque[TickRecord] = deque(maxlen=TICK_HISTORY)

    # ---- fetching -------------------------------------------------------------------------

    @property
    def newest_known(self) -> int:
        """The newest chunk_id held or waiting (-1: none)."""
        if self.pending:
            return self.pending[-1].chunk_id
        return -1 if self.ring.latest_id is None else self.ring.latest_id

    @property
    def has_audio(self) -> bool:
        """Whether the ring holds a chunk a new listener can start from."""
        return self.ring.latest_id is not None

    def fetch_after(self, compressed: bool = False) -> int:
        """The chunk_id the next fetch asks for chunks after: -1 (all the station holds) until a fetch
        has been answered, then the newest known; with `compressed` (the feed has compressed
        listeners), the chunk before the first waiting one that has no compressed forms yet."""
        if not self.fetched:
            return -1
        if compressed:
            lacking = next((chunk.chunk_id for chunk in self.pending if chunk.compressed is None), None)
            if lacking is not None:
                return lacking - 1
        return self.newest_known

    def merge_fetch(self, epoch: float, chunks: Iterable[EncodedChunk], now: float) -> int:
        """Take one fetch's answer; return how many chunks now wait for their publish time.

        Chunks already known are skipped. The first answer's chunks whose time has passed go straight
        into the ring, as history for a new listener's burst and for resuming.
        """
        self.epoch = epoch
        queued = 0
        for chunk in chunks:
            if chunk.chunk_id <= self.newest_known:
                self._add_compressed(chunk)
                continue
            if not self.fetched and chunk.timestamp <= now:
                self.ring.write_chunk(chunk)
            else:
                self.pending.append(chunk)
                queued += 1
        self.fetched = True
        self.fetch_failures = 0
        self.last_fetch_ok = now
        return queued

    def held(self, chunk_id: int) -> EncodedChunk | None:
        """The chunk `chunk_id` as this feed holds it, published or waiting (None: not held)."""
        chunk = self.ring.get(chunk_id)
        if chunk is None and self.pending and self.pending[0].chunk_id <= chunk_id:
            chunk = next((c for c in self.pending if c.chunk_id == chunk_id), None)
        return chunk

    def _add_compressed(self, fetched: EncodedChunk) -> None:
        """A chunk fetched again with compressed forms gives them to the one held without (they are
        the station's only forms of it, so nothing that was sent changes)."""
        if fetched.compressed is None:
            return
        held = self.held(fetched.chunk_id)
        if held is not None and held.compressed is None:
            held.compressed = fetched.compressed

    def lacks_compressed(self, first_id: int) -> bool:
        """Whether a held chunk from `first_id` to the newest known has no compressed forms."""
        if self.ring.latest_id is not None:
            for chunk_id in range(max(first_id, self.ring.oldest_id), self.ring.latest_id + 1):
                chunk = self.ring.get(chunk_id)
                if chunk is not None and chunk.compressed is None:
                    return True
        return any(chunk.compressed is None for chunk in self.pending if chunk.chunk_id >= first_id)

    def fetch_failed(self) -> int:
        """Count a failed fetch; return how many failed in a row."""
        self.fetch_failures += 1
        return self.fetch_failures

    def fetch_delay(self, now: float, compressed: bool = False) -> float:
        """Seconds until the next fetch: the fetch interval while the station answers and the feed
        holds at least half its prefetch past the live edge (with `compressed`, in compressed forms
        too); one chunk's time until then (at start, while the station is away, while a restarted
        station's new audio has not come yet, and while waiting chunks lack the compressed forms a
        new compressed listener needs)."""
        ahead = self.ahead_chunks(now)
        settled = (self.has_audio and self.fetch_failures == 0 and ahead is not None
                   and ahead >= self.settings.replica_prefetch_chunks // 2
                   and not (compressed and self.fetch_after(compressed) < self.newest_known))
        return self.settings.replica_fetch_interval_sec if settled else CHUNK_SECONDS

    # ---- publishing -----------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the next waiting chunk is due (None: nothing waits)."""
        return self.pending[0].timestamp if self.pending else None

    def publish_due(self, now: float) -> list[EncodedChunk]:
        """Move every waiting chunk whose time has come into the ring; return those written, in order
        (a chunk the ring already passed is dropped)."""
        published = []
        pending, ring = self.pending, self.ring
        while pending and pending[0].timestamp <= now:
            chunk = pending.popleft()
            if ring.latest_id is not None and chunk.chunk_id <= ring.latest_id:
                continue
            ring.write_chunk(chunk)
            published.append(chunk)
        self.published += len(published)
        return published

    def record_tick(self, newest: EncodedChunk, published_at: float, fanout_ms: float, listeners: int) -> TickRecord:
        """Keep one tick's record (the last minute's are kept)."""
        record = TickRecord(newest.chunk_id, published_at, (published_at - newest.timestamp) * 1000,
                            fanout_ms, listeners)
        self.ticks.append(record)
        return record

    # ---- readiness ------------------------------------------------------------------------

    def live_id(self, now: float) -> int | None:
        return None if self.epoch is None else live_chunk_id(self.epoch, now)

    def ahead_chunks(self, now: float) -> int | None:
        """How far past the live edge this replica holds the station's audio."""
        live = self.live_id(now)
        return None if live is None or self.newest_known < 0 else self.newest_known - live

    def is_ready(self, now: float) -> bool:
        """Publishing within READY_MAX_BEHIND_CHUNKS of the live edge, holding `ready_ahead_chunks`
        past it."""
        latest, live, ahead = self.ring.latest_id, self.live_id(now), self.ahead_chunks(now)
        if latest is None or live is None or live - latest > READY_MAX_BEHIND_CHUNKS:
            return False
        return ahead is not None and ahead >= self.settings.ready_ahead_chunks

    def status(self, now: float) -> FeedStatus:
        return FeedStatus(
            live_chunk_id=self.live_id(now),
            latest_published=self.ring.latest_id,
            ready=self.is_ready(now),
            ahead_chunks=self.ahead_chunks(now),
            published_chunks=self.published,
            fetch_failures=self.fetch_failures,
            seconds_since_station_answered=None if self.last_fetch_ok is None else round(now - self.last_fetch_ok, 3),
        )
