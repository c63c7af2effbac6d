"""One listener's record of a run: pure, fed with messages and the times they arrived.

The asyncio edge (`client.py`) decodes each WebSocket message and calls the matching
`on_*` method with the arrival time; nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

from auralis_ray.tools.loadtest.gaps import GapDetector
from auralis_ray.tools.loadtest.player import SimulatedPlayer


@dataclass
class ListenerSummary:
    """What the report needs from one listener (small, picklable)."""

    index: int
    client_id: str
    connected: bool = False
    failure: str | None = None  # why it never got `connection_established`
    established_ms: float | None = None  # handshake start → connection_established
    first_audio_ms: float | None = None  # handshake start → first audio chunk
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


class ListenerSession:
    """One listener's record of a run (see the module docstring)."""

    def __init__(
        self,
        index: int,
        client_id: str,
        *,
        window: tuple[float, float],
        prebuffer_chunks: int = 5,
        chunk_s: float = 0.1,
    ) -> None:
        self.index = index
        self.client_id = client_id
        self.window_start, self.window_end = window
        self.player = SimulatedPlayer(prebuffer_chunks, chunk_s)
        self.gaps = GapDetector()
        self.chunk_ids = array("q")
        self.timestamps = array("d")  # server publish time of each chunk
        self.arrivals = array("d")  # when each chunk's last bytes reached this listener's socket
        self.reads = array("d")  # when the load generator read them (arrival + its own queueing)
        self.live = array("b")  # 1 once past the initial burst
        self.handshake_start: float | None = None
        self.established_at: float | None = None
        self.first_audio_at: float | None = None
        self.live_after: float | None = None  # chunks published after this are live
        self.failure: str | None = None
        self.bad_frames = 0
        self.error_codes: Counter[str] = Counter()
        self.closed_early = False
        self.close_code: int | None = None
        self.finished = False

    # -- inputs ---------------------------------------------------------------------
    def on_handshake_start(self, now: float) -> None:
        self.handshake_start = now

    def on_failed(self, reason: str) -> None:
        self.failure = reason

    def on_established(self, server_time: object, now: float) -> None:
        if self.established_at is not None:
            self.bad_frames += 1  # a second connection_established
            return
        self.established_at = now
        self.live_after = float(server_time) if isinstance(server_time, (int, float)) else now

    def on_error(self, code: str) -> None:
        self.error_codes[code] += 1
        if code == "BUFFER_OVERRUN":
            self.gaps.on_buffer_overrun()

    def on_bad_frame(self) -> None:
        self.bad_frames += 1

    def on_audio(self, chunk_id: int, timestamp: float, now: float, arrived_at: float | None = None) -> None:
        """A chunk read at `now` that reached the socket at `arrived_at` (default: `now`). The player
        and first audio go by the read, lateness by the arrival."""
        if self.finished:
            return
        if self.established_at is None:
            self.bad_frames += 1  # audio before connection_established
            return
        if self.first_audio_at is None:
            self.first_audio_at = now
        self.gaps.on_chunk(chunk_id)
        self.player.push(now)
        self.chunk_ids.append(chunk_id)
        self.timestamps.append(timestamp)
        self.arrivals.append(now if arrived_at is None else arrived_at)
        self.reads.append(now)
        self.live.append(1 if timestamp > self.live_after else 0)

    def on_closed(self, code: int | None, now: float) -> None:
        """The connection closed before the run ended."""
        if self.finished:
            return
        self.closed_early = True
        self.close_code = code

    def finish(self, now: float) -> None:
        """The run is over: play out up to `now`, ignore anything later."""
        if self.finished:
            return
        if self.established_at is not None:
            self.player.advance(now)
        self.finished = True

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
        """The chunk ids of `window_lateness_ms()`'s values, in the same order."""
        return [self.chunk_ids[i] for i in self._in_window()]

    def summary(self) -> ListenerSummary:
        start = self.handshake_start

        def since_start(t: float | None) -> float | None:
            return None if t is None or start is None else (t - start) * 1000.0

        connected = self.established_at is not None
        return ListenerSummary(
            index=self.index,
            client_id=self.client_id,
            connected=connected,
            failure=self.failure if connected else (self.failure or "no connection_established"),
            established_ms=since_start(self.established_at),
            first_audio_ms=since_start(self.first_audio_at),
            chunks=len(self.chunk_ids),
            live_chunks=sum(self.live),
            unannounced_gaps=self.gaps.unannounced_gaps,
            missing_chunks=self.gaps.missing_chunks,
            announced_skips=self.gaps.announced_skips,
            skipped_chunks=self.gaps.skipped_chunks,
            out_of_order=self.gaps.out_of_order,
            underruns=self.player.underruns,
            bad_frames=self.bad_frames,
            error_codes=dict(self.error_codes),
            closed_early=self.closed_early,
            close_code=self.close_code,
        )
