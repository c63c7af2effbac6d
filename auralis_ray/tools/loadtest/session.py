"""One listener's record of a run: pure, fed with what it received and the times it arrived.

The asyncio edge (`client.py`, `http_client.py`) decodes what arrives and calls the matching
`on_*` method with the arrival time; nothing here reads a clock or touches a socket.
`ListenerRecord` holds what every listener records; `ListenerSession` is a WebSocket listener's
(chunk ids, lateness, gaps), `http_session.HttpListenerSession` an HTTP stream listener's.

Everything a listener hears goes by the arrival: the kernel's stamp of when the bytes reached its
socket. The load generator stands in for listeners on other machines and yields the CPU to the
server it measures, so when it reads is its own queueing, not the server's; the read times are
kept beside (lateness and first audio by the read) to show how far behind the generator ran.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from auralis_ray.tools.loadtest.gaps import GapDetector
from auralis_ray.tools.loadtest.player import SimulatedPlayer
from auralis_ray.tools.loadtest.stalls import StallDetector


@dataclass
class ListenerSummary:
    """What the report needs from one listener (small, picklable)."""

    index: int
    client_id: str
    connected: bool = False
    failure: str | None = None  # why it never got `connection_established` (HTTP: a 200 response)
    # handshake start → request written: the connect, and the generator's own delay
    request_sent_ms: float | None = None
    established_ms: float | None = None  # handshake start → connection_established (HTTP: response head)
    first_audio_ms: float | None = None  # handshake start → first audio chunk (HTTP: first 100 ms of audio)
    first_audio_read_ms: float | None = None  # the same, by when the generator read it
    first_byte_ms: float | None = None  # HTTP: handshake start → first byte of the response body
    chunks: int = 0
    live_chunks: int = 0  # chunks after the initial burst
    unannounced_gaps: int = 0
    missing_chunks: int = 0
    announced_skips: int = 0
    skipped_chunks: int = 0
    out_of_order: int = 0
    underruns: int = 0
    bad_frames: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    closed_early: bool = False  # the server closed it before the run ended
    close_code: int | None = None
    window_bytes: int = 0  # audio bytes (frames, or the HTTP body) that arrived in the window
    window_audio_s: float = 0.0  # seconds of audio that arrived in the window
    # the time from the first to the last arrival in the window, and the audio that arrived after the
    # first, up to the last: the rate the stream kept, whatever the size of its writes
    window_span_s: float = 0.0
    window_span_audio_s: float = 0.0
    stalls: int = 0  # silences longer than the run's stall_s once audio flowed
    longest_silence_ms: float = 0.0


class ListenerRecord:
    """What every listener records: its handshake, failure or close, the simulated player, silences,
    and the bytes and seconds of audio that arrived in the measurement window."""

    never_connected = "no connection_established"  # the failure of a listener that never connected

    def __init__(
        self,
        index: int,
        client_id: str,
        *,
        window: tuple[float, float],
        prebuffer_chunks: int = 5,
        chunk_s: float = 0.1,
        stall_s: float = 1.0,
    ) -> None:
        self.index = index
        self.client_id = client_id
        self.window_start, self.window_end = window
        self.chunk_s = chunk_s
        self.player = SimulatedPlayer(prebuffer_chunks, chunk_s)
        self.silences = StallDetector(stall_s)
        self.handshake_start: float | None = None
        self.request_sent_at: float | None = None
        self.established_at: float | None = None
        self.first_audio_at: float | None = None
        self.first_audio_read_at: float | None = None
        self.failure: str | None = None
        self.bad_frames = 0
        self.closed_early = False
        self.close_code: int | None = None
        self.finished = False
        self.window_bytes = 0
        self.window_audio_s = 0.0
        self.window_first_arrival: tuple[float, float] | None = None  # (arrived_at, audio_s)
        self.window_last_arrival_at: float | None = None
        self._start_own()

    def _start_own(self) -> None:
        """The state a kind of listener adds, set up at the end of `__init__`."""

    # -- inputs ---------------------------------------------------------------------
    def on_handshake_start(self, now: float) -> None:
        self.handshake_start = now

    def on_request_sent(self, now: float) -> None:
        """The socket connected and the request (WebSocket upgrade or HTTP GET) is being written."""
        self.request_sent_at = now

    def on_failed(self, reason: str) -> None:
        self.failure = reason

    def on_bad_frame(self) -> None:
        self.bad_frames += 1

    def on_closed(self, code: int | None, now: float) -> None:
        """The connection closed before the run ended."""
        if self.finished:
            return
        self.closed_early = True
        self.close_code = code
        self.silences.end(now)

    def finish(self, now: float) -> None:
        """The run is over: play out up to `now`, ignore anything later."""
        if self.finished:
            return
        if self.established_at is not None:
            self.player.advance(now)
        self.silences.end(now)
        self.finished = True

    def _first_audio(self, arrived_at: float, read_at: float) -> None:
        """Audio has come: the first time, when it reached the socket and when it was read."""
        if self.first_audio_at is None:
            self.first_audio_at, self.first_audio_read_at = arrived_at, read_at

    def _arrived(self, size: int, audio_s: float, arrived_at: float) -> None:
        """`size` bytes holding `audio_s` seconds of audio reached the socket at `arrived_at`."""
        self.silences.on_arrival(arrived_at)
        if self.window_start <= arrived_at <= self.window_end:
            self.window_bytes += size
            self.window_audio_s += audio_s
            if self.window_first_arrival is None:
                self.window_first_arrival = (arrived_at, audio_s)
            self.window_last_arrival_at = arrived_at

    # -- outputs --------------------------------------------------------------------
    def window_lateness_ms(self, by_read: bool = False) -> list[float]:
        """Lateness of the live chunks that arrived in the window, in ms (none where chunks carry no
        publish time)."""
        return []

    def window_chunk_ids(self) -> list[int]:
        """The chunk ids of `window_lateness_ms()`'s values, in the same order."""
        return []

    def _since_start_ms(self, t: float | None) -> float | None:
        start = self.handshake_start
        return None if t is None or start is None else (t - start) * 1000.0

    def summary(self) -> ListenerSummary:
        connected = self.established_at is not None
        first = self.window_first_arrival
        return ListenerSummary(
            index=self.index,
            client_id=self.client_id,
            connected=connected,
            failure=self.failure if connected else (self.failure or self.never_connected),
            request_sent_ms=self._since_start_ms(self.request_sent_at),
            established_ms=self._since_start_ms(self.established_at),
            first_audio_ms=self._since_start_ms(self.first_audio_at),
            first_audio_read_ms=self._since_start_ms(self.first_audio_read_at),
            underruns=self.player.underruns,
            bad_frames=self.bad_frames,
            closed_early=self.closed_early,
            close_code=self.close_code,
            window_bytes=self.window_bytes,
            window_audio_s=self.window_audio_s,
            window_span_s=0.0 if first is None else self.window_last_arrival_at - first[0],
            window_span_audio_s=0.0 if first is None else self.window_audio_s - first[1],
            stalls=self.silences.stalls,
            longest_silence_ms=self.silences.longest_silence_s * 1000.0,
            **self._own_summary(),
        )

    def _own_summary(self) -> dict[str, Any]:
        """The summary fields a kind of listener adds."""
        return {}


class ListenerSession(ListenerRecord):
    """A WebSocket listener's record of a run: chunk ids, gaps and lateness besides `ListenerRecord`'s."""

    def _start_own(self) -> None:
        self.gaps = GapDetector()
        self.chunk_ids = array("q")
        self.timestamps = array("d")  # server publish time of each chunk
        self.arrivals = array("d")  # when each chunk's last bytes reached this listener's socket
        self.reads = array("d")  # when the load generator read them (arrival + its own queueing)
        self.live = array("b")  # 1 once past the initial burst
        self.live_after: float | None = None  # chunks published after this are live
        self.error_codes: Counter[str] = Counter()

    # -- inputs ---------------------------------------------------------------------
    def on_established(self, server_time: object, arrived_at: float) -> None:
        if self.established_at is not None:
            self.bad_frames += 1  # a second connection_established
            return
        self.established_at = arrived_at
        self.live_after = float(server_time) if isinstance(server_time, (int, float)) else arrived_at

    def on_error(self, code: str) -> None:
        self.error_codes[code] += 1
        if code == "BUFFER_OVERRUN":
            self.gaps.on_buffer_overrun()

    def on_audio(self, chunk_id: int, timestamp: float, now: float, arrived_at: float | None = None,
                 size: int = 0) -> None:
        """A chunk of `size` bytes read at `now` that reached the socket at `arrived_at` (default: `now`)."""
        if self.finished:
            return
        if self.established_at is None:
            self.bad_frames += 1  # audio before connection_established
            return
        arrival = now if arrived_at is None else arrived_at
        self._first_audio(arrival, now)
        self.gaps.on_chunk(chunk_id)
        self.player.push(arrival)
        self._arrived(size, self.chunk_s, arrival)
        self.chunk_ids.append(chunk_id)
        self.timestamps.append(timestamp)
        self.arrivals.append(arrival)
        self.reads.append(now)
        self.live.append(1 if timestamp > self.live_after else 0)

    # -- outputs --------------------------------------------------------------------
    @property
    def chunks_received(self) -> int:
        return len(self.chunk_ids)

    def _in_window(self) -> list[int]:
        """Indices of the live chunks that arrived in the window."""
        lo, hi = self.window_start, self.window_end
        return [i for i, (arrival, live) in enumerate(zip(self.arrivals, self.live)) if live and lo <= arrival <= hi]

    def window_lateness_ms(self, by_read: bool = False) -> list[float]:
        """Arrival (or, `by_read`, read) − publish time of live chunks that arrived in the window, in ms."""
        seen = self.reads if by_read else self.arrivals
        return [(seen[i] - self.timestamps[i]) * 1000.0 for i in self._in_window()]

    def window_chunk_ids(self) -> list[int]:
        return [self.chunk_ids[i] for i in self._in_window()]

    def _own_summary(self) -> dict[str, Any]:
        return dict(
            chunks=len(self.chunk_ids),
            live_chunks=sum(self.live),
            unannounced_gaps=self.gaps.unannounced_gaps,
            missing_chunks=self.gaps.missing_chunks,
            announced_skips=self.gaps.announced_skips,
            skipped_chunks=self.gaps.skipped_chunks,
            out_of_order=self.gaps.out_of_order,
            error_codes=dict(self.error_codes),
        )
