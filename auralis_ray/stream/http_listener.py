"""HttpStreamSession: one listener of a station's HTTP stream (MP3, or Ogg Opus), without I/O.

Standard players (VLC, mpv, ffmpeg, a browser's `<audio>`) read a station as one endless HTTP
response. The session reads the replica's ring like a WebSocket listener, and says which bytes go
out next: each chunk's compressed form, encoded once by the station and shared by every listener.

- A new listener starts a burst (`burst_chunks`) behind the newest chunk, on a chunk boundary:
  whole MP3 frames, or whole Ogg pages after the stream's header pages (OpusHead, OpusTags). Where
  the station's Ogg stream changes (a restarted station actor starts a new one), the new header
  pages go first: a chained Ogg stream.
- After the burst it gets the chunks as the replica publishes them, in real time, `chunks_per_write`
  at a time: one socket write per `chunks_per_write` chunks (a write costs the replica about the
  same whatever it carries; a player buffers a second or more).
- The bytes the socket has not sent yet are its backlog; past `backlog_max_bytes` the listener
  has stopped reading and is dropped (an HTTP stream has no way to announce a skip).
- An MP3 listener that asked for ICY metadata gets a metadata block every `icy_metaint` audio
  bytes (`IcyInterleaver`), with the station's StreamTitle.

The caller passes `now`, writes what `take` returns and reports the socket's backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .broadcast import BroadcastRingBuffer, ClientCursor, Overrun
from .codecs.icy import IcyInterleaver
from .http_fanout import LiveSpan, LiveSpans

ICY_METAINT = 16_000  # audio bytes between two ICY metadata blocks (Icecast's default)


class StreamFormat(str, Enum):
    """An HTTP stream's format, named by the extension of its path (`/listen/{station}.{format}`)."""

    MP3 = "mp3"
    OGG_OPUS = "opus"

    @property
    def media_type(self) -> str:
        return "audio/mpeg" if self is StreamFormat.MP3 else "audio/ogg"


@dataclass(frozen=True)
class HttpStreamSettings:
    """What an HTTP stream listener is configured with."""

    burst_chunks: int  # chunks before the newest that a new listener starts with
    backlog_max_bytes: int  # unsent bytes past which a listener is dropped
    icy_metaint: int = ICY_METAINT
    chunks_per_write: int = 1  # chunks that wait for one another to go out in one write

    def __post_init__(self):
        if self.chunks_per_write < 1:
            raise ValueError("chunks_per_write must be at least 1")


Piece = bytes | memoryview


class HttpStreamSession:
    """One HTTP stream listener: its cursor in the station's ring, what it has been sent, its ICY framing."""

    def __init__(self, listener_id: str, station: str, fmt: StreamFormat, ring: BroadcastRingBuffer,
                 settings: HttpStreamSettings, now: float, icy: bool = False, title: str = ""):
        """`listener_id` names the cursor in `ring`: unlike any WebSocket client_id. `icy` (MP3 only):
        interleave ICY metadata announcing `title` (`set_title` changes it)."""
        if icy and fmt is not StreamFormat.MP3:
            raise ValueError("ICY metadata goes with the MP3 stream only")
        self.listener_id = listener_id
        self.station = station
        self.fmt = fmt
        self.ring = ring
        self.settings = settings
        self.connected_at = now
        self.icy = IcyInterleaver(settings.icy_metaint) if icy else None
        self.title = title
        self.ogg_header: bytes | None = None  # the header pages of the Ogg stream this listener is in
        self.chunks_sent = 0
        self.bytes_sent = 0
        self.chunks_skipped = 0  # held chunks without compressed forms, and holes in the ring
        self.largest_backlog = 0
        self.closing: str | None = None  # why the stream ends, once it does
        self.cursor: ClientCursor | None = None  # its position in the ring, once open

    def open(self, now: float) -> int:
        """Place the cursor `burst_chunks` before the newest chunk (or at the next one, before any);
        return the chunk_id it starts at."""
        latest = self.ring.latest_id
        start = 0 if latest is None else max(latest - self.settings.burst_chunks + 1, self.ring.oldest_id)
        self.cursor = self.ring.register_client(self.listener_id, start, now)
        return start

    def close(self, reason: str) -> str:
        """End the stream (the first reason wins)."""
        if self.closing is None:
            self.closing = reason
        return self.closing

    def disconnect(self) -> None:
        self.ring.unregister_client(self.listener_id)
        self.cursor = None

    # ---- what to send -------------------------------------------------------------------------

    def chunks_due(self) -> int:
        """How many chunks the ring holds past what this listener has taken."""
        cursor, position = self.cursor, self.ring.write_position
        if cursor is None or position is None:
            return 0
        return max(0, position - cursor.read_position)

    def has_due(self) -> bool:
        return self.chunks_due() > 0

    def ready_to_write(self) -> bool:
        """Whether a write is due: `chunks_per_write` chunks wait (the opening burst holds more)."""
        return self.chunks_due() >= self.settings.chunks_per_write

    def take(self, now: float) -> list[Piece]:
        """Every chunk due, as the bytes to send, in order (shared bytes; views of them between ICY
        blocks). Nothing once the stream is closing."""
        pieces: list[Piece] = []
        if self.closing is not None or self.cursor is None:
            return pieces
        ring, listener_id, ogg = self.ring, self.listener_id, self.fmt is StreamFormat.OGG_OPUS
        while True:
            item = ring.read_chunk(listener_id, now)
            if item is None:
                break
            if isinstance(item, Overrun):
                self.chunks_skipped += item.skipped_to - item.skipped_from
                continue
            forms = item.compressed
            if forms is None:  # a station that does not encode: nothing for this format
                self.chunks_skipped += 1
                continue
            self.chunks_sent += 1
            if ogg:
                if forms.ogg_header != self.ogg_header:
                    self.ogg_header = forms.ogg_header
                    pieces.append(forms.ogg_header)
                body = forms.ogg_pages
            else:
                body = forms.mp3
            if not body:
                continue
            if self.icy is not None:
                pieces.extend(self.icy.interleave(body, self.title))
            else:
                pieces.append(body)
        self.bytes_sent += sum(len(piece) for piece in pieces)
        return pieces

    def take_live(self, now: float, spans: LiveSpans) -> LiveSpan | None:
        """The common write in one step: the span of the chunks due (joined once for every listener,
        `spans`), when at most `chunks_per_write` are due and they need nothing around them (no ICY
        block, no new Ogg header pages). Same effects as `take`; None: use `take`."""
        cursor, ring = self.cursor, self.ring
        position = ring.write_position
        if cursor is None or position is None or self.icy is not None or self.closing is not None:
            return None
        first = cursor.read_position
        if not 0 < position - first <= self.settings.chunks_per_write:
            return None
        mp3 = self.fmt is StreamFormat.MP3
        span = spans.get(mp3, first, position)
        if span is None or not mp3 and span.ogg_header != self.ogg_header:
            return None
        cursor.read_position = position
        cursor.chunks_read += position - first
        cursor.last_read_time = now
        self.chunks_sent += position - first
        self.bytes_sent += len(span.body)
        return span

    def next_write_id(self) -> int:
        """The chunk_id at whose publication this listener's next write is due: `chunks_per_write`
        chunks past what it has taken, and at the earliest the next chunk (a listener that did not
        take what was due, or has not opened, is looked at again on the next tick)."""
        position = self.ring.write_position
        following = 0 if position is None else position
        if self.cursor is None:
            return following
        return max(following, self.cursor.read_position + self.settings.chunks_per_write - 1)

    def set_title(self, title: str) -> None:
        """The StreamTitle the next ICY metadata block announces."""
        self.title = title

    # ---- backlog ------------------------------------------------------------------------------

    def pending_bytes(self) -> int:
        """The bytes of the chunks due that this listener has not taken yet."""
        if not self.chunks_due():
            return 0
        total = 0
        for chunk in self.ring.chunks_after(self.cursor.read_position - 1):
            forms = chunk.compressed
            if forms is not None:
                total += len(forms.mp3 if self.fmt is StreamFormat.MP3 else forms.ogg_pages)
        return total

    def over_backlog(self, socket_backlog: int) -> bool:
        """Whether the listener stopped reading: `socket_backlog` (the bytes its socket holds unsent)
        and the chunks due but not taken come to more than `backlog_max_bytes`."""
        backlog = socket_backlog
        # the newest chunk alone is what every tick brings: count the rest only when more wait
        if backlog <= self.settings.backlog_max_bytes and self.chunks_due() > 1:
            backlog += self.pending_bytes()
        self.largest_backlog = max(self.largest_backlog, backlog)
        return backlog > self.settings.backlog_max_bytes
