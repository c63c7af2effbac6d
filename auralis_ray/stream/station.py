"""StationCore: one station's encoded timeline, without Ray.

Synthesis pushes PCM blocks; each chunk is encoded once into its PCM wire forms into a ring keyed by
chunk_id, and chunk k is stamped for publication at epoch + k * 100 ms. Replicas fetch by chunk_id.

A chunk's compressed forms (Opus, Ogg, MP3) come from stateful encoders that run along the timeline
and cannot encode a chunk twice, while a restarted synthesis timeline is crossfaded into chunks the
station holds. So a chunk is *fixed* before it gets compressed forms: the first fetch that hands it
to a replica, or its publish time, whichever comes first, fixes it, and nothing rewrites a fixed
chunk; the crossfade blends only chunks not yet fixed.

Compressed forms are made only while somebody listens to them: a replica's fetch says whether it has
compressed listeners, and for `COMPRESSED_DEMAND_FETCHES` fetch intervals after such a fetch the
station compresses each chunk as it fixes it, in chunk_id order. A fetch that wants compressed forms
also gets them for the fixed chunks it asks for that have none yet (a replica's first compressed
listener after a quiet spell), from the first of them on: the encoders start a new stream there, and
while it runs it goes on over every chunk fixed since, without a jump. A chunk's compressed forms,
once made, never change. With no compressed listener anywhere the encoders rest, which is most of
what a station costs at rest.

The station also keeps what it plays (`NowPlaying`), from the sections synthesis reports with each
block, by the chunk each starts at.

The Ray actor (`actors/station.py`) only carries calls to and from it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Sequence

import numpy as np

from ..music.now_playing import NowPlaying, stream_title
from .broadcast import BroadcastRingBuffer
from .codecs.compressed import CodecSettings
from .pool import AudioChunkPool
from .protocol import CHUNK_BYTES
from .schedule import live_chunk_id, publish_time
from .settings import StationSettings


# compressed forms are made for this many replica fetch intervals after a fetch asks for them
COMPRESSED_DEMAND_FETCHES = 3


def codec_settings(settings: StationSettings) -> CodecSettings:
    """The station's encoder settings, in bit/s."""
    return CodecSettings(opus_bitrate=settings.opus_bitrate_kbps * 1000, opus_complexity=settings.opus_complexity,
                         mp3_bitrate=settings.mp3_bitrate_kbps * 1000, mp3_quality=settings.mp3_quality)


class StationCore:
    """One station's timeline: ingests rendered PCM, encodes each chunk once into every wire form,
    keeps what it plays, serves replicas' fetches."""

    def __init__(self, name: str, epoch: float, settings: StationSettings,
                 on_encode: Callable[[float], None] | None = None):
        self.name = name
        self.epoch = epoch
        self.ring = BroadcastRingBuffer(settings.ring_capacity_chunks + settings.lookahead_chunks + 20,
                                        settings.catchup_behind_chunks)
        self.pool = AudioChunkPool(settings.chunk_pool_size, codecs=codec_settings(settings), station=name)
        self.on_encode = on_encode
        self.attach_points: deque[int] = deque(maxlen=8)
        self.refused_pushes = 0
        self.crossfade_chunks = settings.restart_crossfade_chunks
        self.prefetch_chunks = settings.replica_prefetch_chunks
        self.fixed_upto = -1  # the newest fixed chunk_id: it and the chunks before it keep their forms for good
        # a replica with compressed listeners asks for them once a fetch interval: three may go amiss
        self.demand_hold_sec = COMPRESSED_DEMAND_FETCHES * settings.replica_fetch_interval_sec
        self.compressed_wanted_until = float("-inf")  # compressed forms are made until then
        self.compressing = False  # the compressed stream runs: every fixed chunk since its start has forms
        self.crossfades = 0
        self.sections: list[NowPlaying] = []  # what plays from which chunk on, oldest first

    def ingest(self, first_chunk_id: int, pcm: bytes, now_playing: Sequence[NowPlaying] = (),
               now: float | None = None) -> int:
        """Store consecutive chunks rendered by synthesis; returns the next chunk_id wanted.

        Only a continuation is accepted: a block that starts at or before what is held, or exactly at
        a point this station instance asked synthesis to continue from. A push from a timeline this
        instance never asked for (in flight across a restart) would leave a hole, and is refused. A
        new timeline that starts inside what is held (a restarted synthesis actor, see
        `next_needed_chunk`) is crossfaded into the held chunks it overlaps that are not fixed yet.

        `now_playing`: the sections the block plays, as synthesis reports them (the one sounding at
        its first chunk, then those that begin in it). With `now`, chunks whose publish time has come
        are fixed first (see the module's docstring).
        """
        if len(pcm) % CHUNK_BYTES:
            raise ValueError(f"PCM length {len(pcm)} is not a whole number of chunks")
        if now is not None:
            self._fix_through(live_chunk_id(self.epoch, now), now)
        held_to = self.ring.write_position
        end = first_chunk_id + len(pcm) // CHUNK_BYTES
        attached = first_chunk_id in self.attach_points
        # the first chunk at which this block's timeline sounds
        sounds_from = first_chunk_id if held_to is None else max(first_chunk_id, held_to)
        if attached:
            self.attach_points.remove(first_chunk_id)  # used once: a retried delivery is a duplicate
            blend_from = max(first_chunk_id, self.fixed_upto + 1)  # a fixed chunk is never rewritten
            if held_to is not None and blend_from < min(held_to, end):
                overlap = pcm[(blend_from - first_chunk_id) * CHUNK_BYTES:(held_to - first_chunk_id) * CHUNK_BYTES]
                if self._crossfade(blend_from, overlap):
                    sounds_from = blend_from
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
            self._observe(start)
            self.ring.write_chunk(chunk)
        self._record_sections(now_playing, sounds_from, end)
        return self.ring.write_position

    def _observe(self, started: float) -> None:
        if self.on_encode is not None:
            self.on_encode(time.perf_counter() - started)

    def compressed_wanted(self, now: float) -> bool:
        """Whether a replica asked for compressed forms within the last `COMPRESSED_DEMAND_FETCHES` fetch
        intervals."""
        return now < self.compressed_wanted_until

    def _fix_through(self, last_id: int, now: float) -> None:
        """Fix every held chunk up to `last_id`; while compressed forms are wanted, compress the newly
        fixed ones, in chunk_id order."""
        if self.ring.write_position is None:
            return
        last_id = min(last_id, self.ring.latest_id)
        if self.compressed_wanted(now):
            self._compress(self._stream_continues_from(self.fixed_upto + 1), last_id)
        else:
            self.compressing = False
        self.fixed_upto = max(self.fixed_upto, last_id)

    def _stream_continues_from(self, first_id: int) -> int:
        """Where compressing toward `first_id` starts: while the compressed stream runs (wanted since it
        started), at the first chunk it has not reached, so it goes on without a jump."""
        next_id = self.pool.next_compressed_id
        return min(first_id, next_id) if self.compressing and next_id is not None else first_id

    def _compress(self, first_id: int, last_id: int) -> None:
        """Give the held chunks `first_id`..`last_id` that have none their compressed forms, in order.
        A hole, or a jump past where the encoders are, starts a new stream (`AudioChunkPool.compress`);
        a chunk the encoders have passed stays without."""
        for cid in range(max(first_id, self.ring.oldest_id), last_id + 1):
            chunk = self.ring.get(cid)
            if chunk is None or chunk.compressed is not None or not self.pool.can_compress(cid):
                continue
            start = time.perf_counter()
            self.pool.compress(chunk)
            self._observe(start)
            self.compressing = True

    def _crossfade(self, first_chunk_id: int, new_pcm: bytes) -> bool:
        """Blend a new timeline's first chunks into the held end of the old one (equal power), in place;
        whether it did (not over a hole)."""
        held = [self.ring.get(cid) for cid in range(first_chunk_id, first_chunk_id + len(new_pcm) // CHUNK_BYTES)]
        if not held or any(chunk is None for chunk in held):
            return False  # nothing whole to blend into: a plain continuation
        assert first_chunk_id > self.fixed_upto, "a fixed chunk is never rewritten"
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
        return True

    def fetch(self, after_id: int, horizon_chunks: int, now: float, compressed: bool = True) -> list[tuple]:
        """Encoded chunks with id > after_id, up to `horizon_chunks` past the live edge, each in its wire
        forms (`EncodedChunk.to_transfer`): handing them out fixes them. `compressed`: the replica has
        compressed listeners, so the chunks come with their compressed forms (see the module's
        docstring)."""
        upto = live_chunk_id(self.epoch, now) + horizon_chunks
        chunks = self.ring.chunks_after(after_id, upto)
        if compressed:
            self.compressed_wanted_until = max(self.compressed_wanted_until, now + self.demand_hold_sec)
        if chunks:
            if compressed:  # the fixed ones first, in order
                self._compress(self._stream_continues_from(chunks[0].chunk_id),
                               min(self.fixed_upto, chunks[-1].chunk_id))
            self._fix_through(chunks[-1].chunk_id, now)
        return [c.to_transfer() for c in chunks]

    def fetch_reply(self, after_id: int, horizon_chunks: int, now: float, compressed: bool = True) -> dict[str, Any]:
        """What a replica's fetch gets: the station's epoch, the chunks (`fetch`), and `now_playing`:
        what sounds from the live edge (or the first chunk fetched, if earlier) to the last chunk
        fetched, oldest first (`now_playing_over`, as `now_playing_message`s)."""
        chunks = self.fetch(after_id, horizon_chunks, now, compressed)
        live = live_chunk_id(self.epoch, now)
        first = min(live, after_id + 1)
        last = max(live, chunks[-1][0]) if chunks else live
        return {"epoch": self.epoch, "chunks": chunks,
                "now_playing": [self.now_playing_message(section) for section in self.now_playing_over(first, last)]}

    # ---- now playing ----------------------------------------------------------------------

    def _record_sections(self, reported: Sequence[NowPlaying], sounds_from: int, end: int) -> None:
        """Keep what a block plays from `sounds_from` (where its timeline sounds) to `end`."""
        if sounds_from >= end or not reported:
            return
        while self.sections and self.sections[-1].since_chunk_id >= sounds_from:
            self.sections.pop()  # an older timeline's sections where the new one takes over
        current, later = None, []
        for section in reported:
            if section.since_chunk_id <= sounds_from:
                current = section
            elif section.since_chunk_id < end:
                later.append(section)
        for section in ([current.starting_at(sounds_from)] if current else []) + later:
            if not self.sections or not self.sections[-1].same_section(section):
                self.sections.append(section)
        oldest = self.ring.oldest_id
        while len(self.sections) > 1 and oldest is not None and self.sections[1].since_chunk_id <= oldest:
            self.sections.pop(0)

    def playing_at(self, chunk_id: int) -> NowPlaying | None:
        """The section sounding at `chunk_id` (None before the first the station knows)."""
        playing = None
        for section in self.sections:
            if section.since_chunk_id > chunk_id:
                break
            playing = section
        return playing

    def now_playing(self, now: float) -> NowPlaying | None:
        """The section sounding at the live edge."""
        return self.playing_at(live_chunk_id(self.epoch, now))

    def now_playing_over(self, first_id: int, last_id: int) -> list[NowPlaying]:
        """The section sounding at `first_id`, then each that starts after it, up to `last_id`."""
        current = self.playing_at(first_id)
        return ([current] if current else []) + [s for s in self.sections if first_id < s.since_chunk_id <= last_id]

    def now_playing_message(self, section: NowPlaying) -> dict[str, Any]:
        """A section as the station reports it: `NowPlaying`'s fields, the station, `since` (the publish
        time of its first chunk, Unix seconds) and `stream_title` (the line for ICY StreamTitle)."""
        return {**section.as_dict(), "station": self.name, "since": publish_time(self.epoch, section.since_chunk_id),
                "stream_title": stream_title(section, self.name)}

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
            # only over chunks not fixed yet, that no replica can fetch before it arrives (a tick's margin)
            if overlap_from > max(self.fixed_upto, live + self.prefetch_chunks) + 1:
                point = overlap_from
        self.attach_points.append(point)
        return point

    def info(self, now: float) -> dict:
        live = live_chunk_id(self.epoch, now)
        latest = self.ring.latest_id
        playing = self.playing_at(live)
        return {
            "name": self.name,
            "epoch": self.epoch,
            "live_chunk_id": live,
            "rendered_until": latest,
            "lookahead_chunks": None if latest is None else latest - live,
            "ready": self.ring.holds(live),
            "encoded_chunks": self.pool.encoded_count,
            "fixed_until": self.fixed_upto,
            "compressed_chunks": self.pool.compressed_count,
            "compressed_streams": self.pool.compressed_streams,
            "compressed_wanted": self.compressed_wanted(now),
            "refused_pushes": self.refused_pushes,
            "crossfades": self.crossfades,
            "now_playing": None if playing is None else self.now_playing_message(playing),
        }
