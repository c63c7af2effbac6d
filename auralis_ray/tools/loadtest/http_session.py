"""An HTTP stream listener's record of a run: pure, fed with the response and the body as it arrives.

The edge (`http_client.py`) reads the response (`httpbody`), times the body's audio (`audioclock`)
and calls `on_response` and `on_body` with the arrival times. A listener connects when a 200
response head arrives. Its player (`SimulatedPlayer`, as a WebSocket listener's) is handed one
chunk each time another whole `chunk_s` of audio has arrived, so underruns mean the same for both.
"""

from __future__ import annotations

from typing import Any

from auralis_ray.tools.loadtest.session import ListenerRecord


class HttpListenerSession(ListenerRecord):
    """An HTTP stream listener's record: first byte, audio seconds received, and `ListenerRecord`'s."""

    never_connected = "no response"

    def _start_own(self) -> None:
        self.status: int | None = None
        self.first_byte_at: float | None = None
        self.body_bytes = 0
        self.audio_s = 0.0
        self.chunks = 0  # whole chunk_s of audio received, handed to the player

    def on_response(self, status: int, arrived_at: float) -> None:
        """The response head arrived: connected when it is a 200, failed otherwise."""
        self.status = status
        if status == 200:
            self.established_at = arrived_at
        else:
            self.on_failed(f"HTTP {status}")

    def on_body(self, size: int, audio_s: float, arrived_at: float, now: float) -> None:
        """`size` body bytes completing `audio_s` seconds of audio, read at `now`, that reached the
        socket at `arrived_at`."""
        if self.finished or self.established_at is None:
            return
        if self.first_byte_at is None:
            self.first_byte_at = arrived_at
        self.body_bytes += size
        self.audio_s += audio_s
        self._arrived(size, audio_s, arrived_at)
        # a whole number of chunks, with a nanosecond's slack for the float sum of many pieces
        whole = int(self.audio_s / self.chunk_s + 1e-9)
        if whole > self.chunks:
            self._first_audio(arrived_at, now)
        for _ in range(whole - self.chunks):
            self.player.push(arrived_at)
        self.chunks = max(self.chunks, whole)

    def _own_summary(self) -> dict[str, Any]:
        return dict(first_byte_ms=self._since_start_ms(self.first_byte_at), chunks=self.chunks)
