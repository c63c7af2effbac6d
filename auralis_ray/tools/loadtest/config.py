"""The load test's own settings: what to open, how fast, for how long, and the goals.

The load generator is an outside client of Auralis, so it keeps its tunables here
rather than in the server's `PerformanceConfig`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from auralis_ray.tools.loadtest.frames import FORMATS, HTTP_FORMATS, TIER_TARGET_MS

# What a server process looks like when no --server-pid is given (see procmon).
DEFAULT_SERVER_PATTERNS = (r"ray::", r"raylet", r"gcs_server", r"\bserve\b")
# The URL's scheme, for a WebSocket and for an HTTP stream on the same port.
_WEBSOCKET_SCHEME = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_HTTP_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


@dataclass(frozen=True)
class Goals:
    """Pass/fail thresholds of a run."""

    max_underruns: int = 0
    max_unannounced_gaps: int = 0
    lateness_limit_ms: float = 50.0
    min_fraction_within_limit: float = 0.999
    first_audio_p99_ms: float = 150.0
    max_failed_listeners: int = 0
    # HTTP streams: no silence longer than the run's `stall_s`, and every listener keeps real time:
    # between its first and last arrival in the window it receives that long of audio, less
    # `realtime_tolerance_s` (a stream that stops is a stall)
    max_stalls: int = 0
    max_listeners_behind_real_time: int = 0
    # µs of server CPU per listener per 100 ms of audio delivered (window minus idle); None: no goal
    max_server_us_per_listener_per_100ms: float | None = None


@dataclass(frozen=True)
class LoadTestConfig:
    """One load test run: where, how many listeners, for how long, and how they listen."""

    url: str = "ws://127.0.0.1:8000"
    listeners: int = 100
    seconds: float = 10.0  # steady-state measurement window, after the ramp
    format: str = "binary"
    station: str = "default"
    tier: str = "normal"
    procs: int = 1  # worker processes the listeners are split across
    # The listener processes' scheduling priority (nice, 0-19), each in a process session of its own
    # (`yield_to_other_sessions`). What listeners hear is timed by the kernel's arrival stamps, not
    # by when the generator reads, and the generator stands in for listeners on other machines: on
    # a shared machine it yields the cores to the server under test rather than competing with it
    # as an equal (0).
    nice: int = 10
    ramp_rate: float = 200.0  # connections opened per second
    settle_s: float = 1.0  # after the last connection opens, before the window starts
    # server CPU/RSS sampled with no listener, before the ramp. A whole system idles in bursts
    # (synthesis renders 2 s blocks): 10 s average five of them; 1 s windows read 25-41 % of a core
    # for the same idle `make run`, which swung the marginal CPU per listener by 2x
    idle_s: float = 10.0
    prebuffer_chunks: int = 5
    connect_timeout_s: float = 10.0
    deflate: bool = False  # offer permessage-deflate, as browsers do
    # http-mp3: skip the bytes before the first frame header rather than count the stream bad (a
    # server whose burst starts mid-frame, as Icecast's does); Auralis starts on a frame boundary
    mp3_resync: bool = False
    stall_s: float = 1.0  # a silence longer than this, once audio flows, is a stall
    # how much less audio than the time between its first and last arrival in the window a listener
    # may receive and still hold real time (a chunk's share of whole MP3 frames is 3 or 4 of them)
    realtime_tolerance_s: float = 0.3
    server_pids: tuple[int, ...] = ()  # empty: match DEFAULT_SERVER_PATTERNS
    server_patterns: tuple[str, ...] = DEFAULT_SERVER_PATTERNS
    label: str = "target"
    goals: Goals = field(default_factory=Goals)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in _HTTP_SCHEME or not parts.hostname:
            raise ValueError(f"url must be ws://HOST:PORT or wss://HOST:PORT (or http, https), got {self.url!r}")
        if self.listeners < 1:
            raise ValueError("listeners must be at least 1")
        if self.seconds <= 0:
            raise ValueError("seconds must be positive")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.tier not in TIER_TARGET_MS:
            raise ValueError(f"tier must be one of {tuple(TIER_TARGET_MS)}, got {self.tier!r}")
        if not 1 <= self.procs <= self.listeners:
            raise ValueError("procs must be between 1 and the number of listeners")
        if not 0 <= self.nice <= 19:
            raise ValueError("nice must be between 0 and 19")
        if self.ramp_rate <= 0:
            raise ValueError("ramp_rate must be positive")
        if self.settle_s < 0 or self.idle_s < 0:
            raise ValueError("settle_s and idle_s must not be negative")
        if self.stall_s <= 0 or self.realtime_tolerance_s < 0:
            raise ValueError("stall_s must be positive and realtime_tolerance_s not negative")
        for pattern in self.server_patterns:
            re.compile(pattern)

    @property
    def ramp_s(self) -> float:
        return self.listeners / self.ramp_rate

    @property
    def is_http(self) -> bool:
        """Listeners read an HTTP stream (`http-mp3`, `http-opus`) rather than a WebSocket."""
        return self.format in HTTP_FORMATS

    def _base(self, websocket: bool) -> str:
        parts = urlsplit(self.url.rstrip("/"))
        scheme = {True: _WEBSOCKET_SCHEME, False: _HTTP_SCHEME}[websocket][parts.scheme]
        return parts._replace(scheme=scheme).geturl()

    def listener_uri(self, client_id: str) -> str:
        return (
            f"{self._base(websocket=True)}/ws/audio/{client_id}"
            f"?station={quote(self.station, safe='')}&format={self.format}&buffer_tier={self.tier}"
        )

    def stream_url(self) -> str:
        """The HTTP stream the listeners of an `http-*` format open, on the server's port."""
        extension = {"http-mp3": "mp3", "http-opus": "opus"}[self.format]
        return f"{self._base(websocket=False)}/listen/{quote(self.station, safe='')}.{extension}"
