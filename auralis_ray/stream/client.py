"""WebSocketClientState and ClientSession: one listener's protocol state machine.

The session is sans-I/O: it takes inputs (a chunk published into the shared ring, a client message,
what the socket did, `now`) and returns what to do (frames to send, what a message changed, a
close). It holds no socket; the Serve edge moves the frames and reports back.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

from . import protocol as p
from .adaptive import TIER_ORDER, TIERS, AdaptiveRingBuffer
from .broadcast import BroadcastRingBuffer, Overrun
from .jitter import JitterTracker
from .pool import EncodedChunk, ws_frame
from .settings import SessionSettings
from .token_bucket import TokenBucket

Frame = str | bytes


class ConnectionState(Enum):
    """A listener's connection: connecting -> active -> draining -> disconnected."""

    CONNECTING = "connecting"
    ACTIVE = "active"
    DRAINING = "draining"
    DISCONNECTED = "disconnected"


_ALLOWED = {
    ConnectionState.CONNECTING: {ConnectionState.ACTIVE, ConnectionState.DISCONNECTED},
    ConnectionState.ACTIVE: {ConnectionState.DRAINING, ConnectionState.DISCONNECTED},
    ConnectionState.DRAINING: {ConnectionState.DISCONNECTED},
    ConnectionState.DISCONNECTED: set(),
}


class IllegalTransition(RuntimeError):
    """A connection state change that the lifecycle does not allow."""

    pass


@dataclass(frozen=True)
class Closing:
    """The close a session asks its socket for: code and reason."""

    code: int
    reason: str


@dataclass(frozen=True)
class Received:
    """What one client message did: the underruns it newly reported, whether it broke the protocol,
    and the close it led to (the answers it queued leave with the next frames)."""

    underruns: int = 0
    invalid: bool = False
    closing: Closing | None = None


NOTHING_RECEIVED = Received()
# a resume point at most this far past the live edge waits for its chunk (the replica it left may
# publish a little ahead of this one); one further on belongs to another timeline
RESUME_AHEAD_CHUNKS = 50
_cursor_numbers = itertools.count()  # a session's cursor name is unlike every other's ('#' is in no client_id)


def _past_limit(times: deque[float], now: float, window_sec: float, limit: int) -> bool:
    """Add an event at `now` to `times`; whether more than `limit` now fall in the last `window_sec`."""
    times.append(now)
    while times and times[0] < now - window_sec:
        times.popleft()
    return len(times) > limit


@dataclass
class WebSocketClientState:
    """One listener's connection: where it is in its lifecycle and what has gone to and from it.

    This is the session's state itself, not a copy: `ClientSession` keeps every fact about its
    connection here. The outbox owns the tier it adapts; `current_buffer_tier` follows each change.
    """

    client_id: str
    connection_state: ConnectionState
    connected_at: float
    last_message_at: float
    messages_sent: int = 0
    bytes_sent: int = 0
    errors: int = 0  # client messages that broke the protocol
    current_buffer_tier: str = "normal"
    jitter_tracker: JitterTracker | None = None
    chunks_sent: int = 0
    overruns: int = 0  # times the listener was skipped forward
    underruns_reported: int = 0  # the player's own count, from its latest client_report
    played_reported: int = 0
    busy_since: float | None = None  # since when the socket has not taken what it was given
    closing: Closing | None = None  # the close the session asked for

    def transition(self, new: ConnectionState) -> None:
        if new is self.connection_state:
            return
        if new not in _ALLOWED[self.connection_state]:
            raise IllegalTransition(f"{self.connection_state.value} -> {new.value}")
        self.connection_state = new


class ClientSession:
    """A listener of one station: its cursor in the replica's ring, its outbox, tier and limits."""

    def __init__(self, client_id: str, station: str, fmt: str, ring: BroadcastRingBuffer, settings: SessionSettings,
                 now: float, server_version: str, tier: str = "normal", resume_from: int | None = None,
                 codec: dict | None = None):
        """`codec`: what `connection_established` says of a compressed format's codec (`p.opus_codec`)."""
        self.client_id = client_id
        # its cursor's name in the ring: its own, so that a newer socket with the same client_id on the
        # same station has a cursor of its own while the older one closes
        self.cursor_id = f"{client_id}#{next(_cursor_numbers)}"
        self.station = station
        self.fmt = fmt
        self.codec = codec
        self.compressed = fmt == p.OPUS_FORMAT  # its frames are a chunk's compressed forms
        self.ring = ring
        self.settings = settings
        self.server_version = server_version
        self.resume_from = resume_from
        s = settings
        tracker = JitterTracker(s.jitter_window_size, s.jitter_ema_alpha)
        self.state = WebSocketClientState(
            client_id=client_id,
            connection_state=ConnectionState.CONNECTING,
            connected_at=now,
            last_message_at=now,
            current_buffer_tier=tier,
            jitter_tracker=tracker,
        )
        self.outbox: AdaptiveRingBuffer = AdaptiveRingBuffer(
            capacity_chunks=max(s.client_queue_max_chunks, TIERS[TIER_ORDER[-1]].target_ms // p.CHUNK_DURATION_MS + 2),
            chunk_duration_ms=p.CHUNK_DURATION_MS,
            initial_tier=tier,
            jitter_tracker=tracker,
            adaptive=s.enable_adaptive_tiers,
            promote_underrun_rate=s.promote_underrun_rate,
            demote_underrun_rate=s.demote_underrun_rate,
            demote_jitter_ms=s.demote_jitter_ms,
            demote_jitter_ms_minimal=s.demote_jitter_ms_minimal,
            adjustment_interval_chunks=s.tier_adjustment_interval_chunks,
        )
        self.flow = TokenBucket(max(s.token_bucket_capacity, self.outbox.target_chunks), s.token_bucket_refill_rate)
        self.inbound = TokenBucket(s.client_message_burst, s.client_message_rate)
        self.control: deque[str] = deque()  # control messages, sent before any audio
        # messages that go right before the first chunk at or after a chunk_id: (chunk_id, message)
        self.announcements: deque[tuple[int, str]] = deque()
        self.invalid_times: deque[float] = deque()
        self.ignored_times: deque[float] = deque()  # messages past the inbound rate, in the window
        self.rate_limited = False  # the last message was past the rate (and the run of them answered)
        self.burst_end = -1  # the opening burst's last chunk (its chunks are not timed for jitter)
        self._last_status = now

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def current_tier(self) -> str:
        return self.outbox.current_tier

    @property
    def closing(self) -> Closing | None:
        return self.state.closing

    def open(self, now: float) -> None:
        """Queue `connection_established`, place the cursor (burst or resume point), go ACTIVE."""
        self._queue(p.connection_established(
            self.client_id, self.station, now, self.server_version, self.current_tier,
            self.outbox.target_buffer_ms, self.fmt, self.codec,
        ))
        live = self.ring.latest_id
        burst = self.outbox.target_chunks
        start = 0 if live is None else max(live - burst + 1, self.ring.oldest_id or 0)
        if self.resume_from is not None and live is not None:
            first = self.resume_from + 1
            if live < first <= live + RESUME_AHEAD_CHUNKS or first <= live and self.ring.holds_range(first, live):
                start = first
            else:
                why = "is no longer held" if first <= live else "lies ahead of the live edge"
                self._queue_error(
                    p.ErrorCode.BUFFER_OVERRUN, f"resume point {self.resume_from} {why}; "
                    f"continuing from the live edge at {start}", p.Severity.WARNING, now,
                )
        self.burst_end = -1 if live is None else live
        self.ring.register_client(self.cursor_id, start, now)
        self.state.transition(ConnectionState.ACTIVE)

    def begin_drain(self, reason: str, drain_period_sec: float, now: float) -> None:
        if self.state.connection_state is ConnectionState.ACTIVE:
            self._queue(p.shutdown_warning(reason, drain_period_sec, now))
            self.state.transition(ConnectionState.DRAINING)

    def close(self, code: int, reason: str) -> Closing:
        """Ask for the socket to be closed (the first request wins); return the close asked for."""
        if self.state.closing is None:
            self.state.closing = Closing(code, reason)
        return self.state.closing

    def disconnect(self) -> None:
        self.ring.unregister_client(self.cursor_id)
        self.outbox.clear()
        self.control.clear()
        self.announcements.clear()
        self.state.transition(ConnectionState.DISCONNECTED)

    # ---- audio path -----------------------------------------------------------------------

    def pump(self, now: float) -> bool:
        """Move newly published chunks from the shared ring into the outbox (token-bucket paced).

        Returns True when there is something to send.
        """
        ring, cid = self.ring, self.cursor_id
        while ring.write_position is not None and ring.client_cursors[cid].read_position < ring.write_position:
            if self.settings.enable_token_bucket and not self.flow.consume(now):
                break
            item = ring.read_chunk(cid, now)
            if item is None:
                break
            if isinstance(item, Overrun):
                self._announce_overrun(item, now, "fell behind the held audio")
                continue
            if self.compressed and item.compressed is None:
                self._announce_overrun(Overrun(item.chunk_id, item.chunk_id + 1), now,
                                       "got a chunk without compressed forms")
                continue
            if self.announcements:
                self._announce_before(item.chunk_id)
            if not self.outbox.write_chunk(item):
                self._overflow(item, now)
        return bool(self.control) or self.outbox.get_depth() > 0

    def take_live(self, now: float) -> bytes | None:
        """The common tick in one step, as a wire frame the caller writes at once: the newest chunk,
        when it is the only one this listener has not had and nothing else waits (no control message,
        an empty outbox, a token to spend). Same effects as pump() + take_frames(wire=True) + sent();
        None: use those.
        """
        ring = self.ring
        position = ring.write_position
        if (self.control or self.outbox.get_depth() or position is None
                or self.announcements and self.announcements[0][0] < position
                or self.state.connection_state is ConnectionState.DISCONNECTED):
            return None
        cursor = ring.client_cursors.get(self.cursor_id)
        if cursor is None or cursor.read_position != position - 1:
            return None
        newest = ring.get(position - 1)
        if newest is None or self.compressed and newest.compressed is None:
            return None
        if self.settings.enable_token_bucket and not self.flow.consume(now):
            return None
        chunk = ring.read_chunk(self.cursor_id, now)
        frame = chunk.websocket_frame(self.fmt, 0, self.outbox.current_tier)
        self._count_audio(chunk, now)
        self.sent((frame,))
        return frame

    def _count_audio(self, chunk: EncodedChunk, now: float) -> None:
        """A chunk leaves for the listener: count it, and time it unless it belongs to the burst."""
        state = self.state
        state.chunks_sent += 1
        tracker = state.jitter_tracker
        if chunk.chunk_id > self.burst_end:
            tracker.record_chunk(chunk.timestamp, now, chunk.chunk_id)
        else:
            tracker.total_chunks += 1

    def _overflow(self, item: EncodedChunk, now: float) -> None:
        """The socket is not keeping up: drop the queued chunks and jump to just behind the live edge.
        Queued messages (a section's `now_playing`, an earlier notice) stay, and the notice, naming every
        chunk skipped, follows them."""
        dropped_from, messages = item.chunk_id, []
        while (queued := self.outbox.read_chunk()) is not None:
            if isinstance(queued, EncodedChunk):
                dropped_from = min(dropped_from, queued.chunk_id)
            else:
                messages.append(queued)
        self.ring.move_to(self.cursor_id, self.ring.write_position - self.ring.catchup_behind)
        resumes_at = self.ring.client_cursors[self.cursor_id].read_position
        for message in messages:
            self.outbox.write_chunk(message)
        self._announce_overrun(Overrun(dropped_from, resumes_at), now, "not keeping up with the stream")

    def _announce_overrun(self, overrun: Overrun, now: float, why: str) -> None:
        self.state.overruns += 1
        frame = p.dumps(p.error(
            p.ErrorCode.BUFFER_OVERRUN,
            f"listener {why}; skipped chunks {overrun.skipped_from}..{overrun.skipped_to - 1}",
            p.Severity.WARNING, now,
        ))
        self.outbox.write_chunk(frame)  # in stream order, right before the jump

    def take_frames(self, now: float, wire: bool = False) -> list[Frame]:
        """Frames to send now: control first, then the outbox in order. `wire`: as complete WebSocket
        frames (bytes; a chunk's frame is shared with every listener of the same format)."""
        frames: list[Frame] = []
        while self.control:
            frame = self.control.popleft()
            frames.append(ws_frame(frame) if wire else frame)
        if self.state.connection_state is ConnectionState.DISCONNECTED:
            return frames
        live = self.ring.latest_id or 0
        tier = self.outbox.current_tier
        fmt = self.fmt
        while True:
            item = self.outbox.read_chunk()
            if item is None:
                break
            if isinstance(item, EncodedChunk):
                frame_of = item.websocket_frame if wire else item.frame
                frames.append(frame_of(fmt, live - item.chunk_id, tier))
                self._count_audio(item, now)
            else:
                frames.append(ws_frame(item) if wire else item)
        return frames

    # ---- what the socket did --------------------------------------------------------------

    def socket_busy(self, now: float) -> None:
        """The socket has not taken what it was given (a send under way, or more unsent bytes than it
        may hold), since `now` unless since earlier."""
        if self.state.busy_since is None:
            self.state.busy_since = now

    def sent(self, frames: Sequence[Frame]) -> None:
        """`frames` went to the socket (none: it just has room again); it is not busy."""
        state = self.state
        state.busy_since = None
        if frames:
            state.messages_sent += len(frames)
            state.bytes_sent += sum(len(f) for f in frames)

    @property
    def is_busy(self) -> bool:
        return self.state.busy_since is not None

    def is_stalled(self, now: float) -> bool:
        """The socket has been busy longer than `stalled_client_timeout_sec`: the listener stopped reading."""
        busy_since = self.state.busy_since
        return busy_since is not None and now - busy_since > self.settings.stalled_client_timeout_sec

    # ---- client messages ------------------------------------------------------------------

    def on_message(self, raw: str | bytes | None, now: float) -> Received:
        """One client message: answer it (queued with the control messages) and return what it did.
        Once the socket is closing, nothing more is answered."""
        if self.state.closing is not None:
            return NOTHING_RECEIVED
        self.state.last_message_at = now
        if not self.inbound.consume(now):
            return self._ignored(now)
        self.rate_limited = False
        try:
            message = p.parse_client_message(raw, self.settings.max_client_message_bytes, TIER_ORDER)
        except p.ProtocolError as problem:
            return Received(invalid=True, closing=self._invalid(problem, now))
        if isinstance(message, p.Ping):
            self._queue(p.pong(now, message.timestamp))
        elif isinstance(message, p.BufferControl):
            previous = self.outbox.set_tier(message.requested_tier)
            self._tier_changed(previous, now)
        elif isinstance(message, p.ClientReport):
            underruns = self._on_report(message, now)
            if underruns:
                return Received(underruns=underruns)
        return NOTHING_RECEIVED

    def _ignored(self, now: float) -> Received:
        """A message past the inbound rate: ignored; the first of a run is answered, and past
        `ignored_message_limit` in the window the socket closes."""
        if not self.rate_limited:
            self.rate_limited = True
            self._queue_error(p.ErrorCode.RATE_LIMIT_EXCEEDED, "too many messages; they are ignored until the "
                              "rate falls", p.Severity.WARNING, now)
        if _past_limit(self.ignored_times, now, self.settings.invalid_message_window_sec,
                       self.settings.ignored_message_limit):
            return Received(closing=self.close(p.CloseCode.POLICY_VIOLATION, "too many messages"))
        return NOTHING_RECEIVED

    def _invalid(self, problem: p.ProtocolError, now: float) -> Closing | None:
        """Answer an invalid message; past `invalid_message_limit` in the window, close."""
        self.state.errors += 1
        self._queue_error(problem.code, problem.message, problem.severity, now)
        if _past_limit(self.invalid_times, now, self.settings.invalid_message_window_sec,
                       self.settings.invalid_message_limit):
            return self.close(p.CloseCode.POLICY_VIOLATION, "too many invalid messages")
        return None

    def _on_report(self, report: p.ClientReport, now: float) -> int:
        """Take a client_report in; return the underruns it adds to the listener's count."""
        state = self.state
        new_underruns = max(0, report.underruns - state.underruns_reported)
        state.underruns_reported = max(state.underruns_reported, report.underruns)
        state.played_reported = max(state.played_reported, report.played_chunks)
        if new_underruns:
            state.jitter_tracker.record_underrun(new_underruns)
            cursor = self.ring.client_cursors.get(self.cursor_id)
            if cursor is not None:
                cursor.buffer_underruns += new_underruns
        self.outbox.reported_buffered_ms = report.buffered_ms
        rate = self.outbox.window_underrun_rate()
        change = self.outbox.adjust_tier()
        if change is not None:
            self._tier_changed(change[0], now)
        elif self.current_tier == TIER_ORDER[-1] and rate > self.settings.promote_underrun_rate:
            self._queue_error(p.ErrorCode.PERSISTENT_UNDERRUNS,
                              f"underrun rate {rate:.1%} even at the largest buffer tier", p.Severity.WARNING, now)
        return new_underruns

    def _tier_changed(self, previous: str, now: float) -> None:
        self.state.current_buffer_tier = self.current_tier
        self.flow.capacity = max(self.settings.token_bucket_capacity, self.outbox.target_chunks)
        self._queue(p.buffer_control_ack(previous, self.current_tier, now))

    # ---- status ---------------------------------------------------------------------------

    def status_due(self, now: float) -> bool:
        return now - self._last_status >= self.settings.buffer_status_interval_sec

    def queue_status(self, now: float) -> None:
        self._last_status = now
        self._queue(self.buffer_status(now))

    def buffer_status(self, now: float) -> dict:
        return {
            "type": "buffer_status",
            "client_id": self.client_id,
            "timestamp": now,
            "buffer_health": self.outbox.get_buffer_health(),
            "performance": {
                "chunks_sent": self.state.chunks_sent,
                "bytes_sent": self.state.bytes_sent,
                "underruns": self.state.underruns_reported,
                "connection_uptime_sec": round(now - self.state.connected_at, 3),
            },
        }

    def queue_now_playing(self, message: str) -> None:
        """Queue a `now_playing` message (encoded once for every listener of the station) to go next."""
        self.control.append(message)

    def announce(self, message: str, from_chunk_id: int) -> None:
        """Send `message` (a `now_playing`, encoded once) right before this listener's first chunk at or
        after `from_chunk_id`, in its stream's order, however far behind the live edge it is."""
        self.announcements.append((from_chunk_id, message))

    def _announce_before(self, chunk_id: int) -> None:
        """Into the outbox, ahead of `chunk_id`: the announcements due by then (while there is room;
        a full outbox keeps them for the chunk after its catch-up jump)."""
        outbox = self.outbox
        while self.announcements and self.announcements[0][0] <= chunk_id and outbox.get_depth() < outbox.capacity - 1:
            self.outbox.write_chunk(self.announcements.popleft()[1])

    def _queue(self, message: dict) -> None:
        self.control.append(p.dumps(message))

    def _queue_error(self, code: p.ErrorCode, message: str, severity: p.Severity, now: float) -> None:
        self._queue(p.error(code, message, severity, now))
