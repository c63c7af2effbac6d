"""The one configuration tree: every tunable of Auralis lives here.

Values come from, in order of precedence: keyword arguments, environment variables
(`AURALIS__BUFFER__INITIAL_TIER=stable`, `__` between levels), a `.env` file, defaults.
A bad value fails at start with a message that names the setting.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .music.params import StationParams
from .stream.adaptive import TIER_ORDER
from .stream.protocol import CHUNK_SECONDS

TierName = Literal[TIER_ORDER]  # the buffer tiers' names, as stream/adaptive.py defines them


class _Section(BaseModel):
    """A section of the tree: unknown fields are refused, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BufferConfig(_Section):
    """Buffer management configuration."""

    enable_adaptive_tiers: bool = True
    enable_token_bucket: bool = True

    # Adaptive buffer settings
    initial_tier: TierName = "normal"
    tier_adjustment_interval_chunks: int = Field(default=50, ge=1)
    promote_underrun_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    demote_underrun_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    demote_jitter_ms: float = Field(default=10.0, ge=0.0)
    demote_jitter_ms_minimal: float = Field(default=5.0, ge=0.0)

    # Jitter tracking settings
    jitter_window_size: int = Field(default=50, ge=2)
    jitter_ema_alpha: float = Field(default=0.1, gt=0.0, le=1.0)

    # Token bucket settings (tokens are chunks): 20/s refills at twice the chunk rate, so a listener
    # that fell behind (a resume) catches up with the live edge.
    token_bucket_capacity: int = Field(default=10, ge=1)
    token_bucket_refill_rate: float = Field(default=20.0, gt=0.0)

    # Object pool settings
    chunk_pool_size: int = Field(default=20, ge=1)

    # Broadcast ring: how much recent audio the station and each replica hold (resume window)
    ring_capacity_chunks: int = Field(default=300, ge=40)
    catchup_behind_chunks: int = Field(default=5, ge=1)
    # Look-ahead the synthesis keeps rendered beyond the live edge
    lookahead_chunks: int = Field(default=80, ge=10)
    # What each ingress replica prefetches beyond the live edge: covers a station actor restart
    replica_prefetch_chunks: int = Field(default=30, ge=1)
    # How often each ingress replica asks a station actor for what is new. The stream is rendered
    # seconds ahead, so a call a second keeps the replica 2-3 s ahead at a tenth of the actor calls
    # (and their CPU on both sides) of a call per 100 ms tick.
    replica_fetch_interval_sec: float = Field(default=1.0, gt=0.0)
    # A replica is ready for listeners (`/readyz`) once it holds this much audio past the live edge:
    # at start-up synthesis is still warming up, and a listener let in while the replica held
    # nothing ahead got chunks up to 0.4 s late
    ready_ahead_chunks: int = Field(default=10, ge=0)
    # A restarted synthesis actor starts each station's new timeline this far before the end of
    # what the station holds, and the station crossfades the overlap (equal power): the old
    # timeline's last note would otherwise stop dead mid-wave, a click. 0: a plain cut.
    restart_crossfade_chunks: int = Field(default=10, ge=0)


class ConcurrencyConfig(_Section):
    """WebSocket concurrency configuration."""

    # Threads of the synthesis engine's render pool
    thread_pool_workers: int = Field(default=2, ge=1, le=8)

    # Listeners per ingress replica
    max_concurrent_clients: int = Field(default=2000, ge=1)

    # Per-listener send queue bound (frames): past it the listener skips to the live edge
    client_queue_max_chunks: int = Field(default=40, ge=2)
    # Direct writes: unsent bytes a listener's socket may hold before its frames wait in the outbox
    send_backlog_max_bytes: int = Field(default=65536, ge=4096)
    # The kernel's send buffer of a WebSocket listener's socket (the kernel doubles it: 256 KiB, 1.5 s
    # of PCM); left to itself it grows to 4 MiB, and a listener that stops reading is noticed that late
    websocket_send_buffer_bytes: int = Field(default=131072, ge=4096)
    # HTTP stream listeners get this many chunks per write (4: one send every 400 ms; players buffer
    # a second or more, and a send costs the replica about the same whatever it carries)
    http_chunks_per_write: int = Field(default=4, ge=1, le=10)
    # Write pre-framed frames straight to the socket when the ASGI server allows (see serve/direct.py)
    enable_direct_writes: bool = True
    # A listener that cannot take a frame for this long is disconnected
    stalled_client_timeout_sec: float = Field(default=10.0, gt=0.0)
    # Invalid client messages tolerated in the window before close 1008
    invalid_message_limit: int = Field(default=10, ge=1)
    invalid_message_window_sec: float = Field(default=10.0, gt=0.0)
    max_client_message_bytes: int = Field(default=4096, ge=64)
    # Inbound message rate per listener (token bucket); a message past it is ignored, and the first of
    # a run of them answered with RATE_LIMIT_EXCEEDED
    client_message_burst: int = Field(default=20, ge=1)
    client_message_rate: float = Field(default=10.0, gt=0.0)
    # Ignored messages tolerated in `invalid_message_window_sec` before close 1008
    ignored_message_limit: int = Field(default=200, ge=1)
    buffer_status_interval_sec: float = Field(default=5.0, gt=0.0)
    # A fetch from a station actor that takes longer fails; the replica serves what it holds
    station_fetch_timeout_sec: float = Field(default=2.0, gt=0.0)
    # Synthesis and station actors work seconds ahead of the live edge: they run at this niceness
    # (or lower priority if started lower), so the live fan-out gets a shared CPU first
    ahead_of_live_niceness: int = Field(default=10, ge=0, le=19)

    # Graceful shutdown
    drain_timeout_sec: float = Field(default=5.0, ge=0.0)
    # A replica that Serve replaces keeps its drained listeners playing up to this much longer, until
    # another replica accepts on the shared port (Serve starts the successor of a deployment's last
    # replica only as it stops it). The shutdown watch's 1 s, the drain and this stay below the
    # deployment's graceful_shutdown_timeout_s, past which Serve cuts the sockets.
    handover_wait_sec: float = Field(default=8.0, ge=0.0)


class GPUConfig(_Section):
    """GPU optimization configuration."""

    enable_batch_processing: bool = True
    enable_torch_compile: bool = False
    enable_cuda_streams: bool = True

    # Device: "auto" picks CUDA > MPS > CPU
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    # Fraction of a GPU each synthesis actor asks for when the cluster has GPUs
    gpu_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    torch_threads: int = Field(default=1, ge=1, le=64)

    # Batch processing
    max_batch_size: int = Field(default=16, ge=1)

    # torch.compile settings
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "reduce-overhead"
    warmup_iterations: int = Field(default=3, ge=0)

    # 100 ms chunks per render call: 2 s amortizes the per-call cost (about 19 % cheaper per second of
    # audio than 1 s blocks, BENCHMARKS.md); the stream runs buffer.lookahead_chunks ahead anyway
    render_block_chunks: int = Field(default=20, ge=1, le=100)

    # Master bus and room (synthesis engine)
    target_lufs: float = Field(default=-16.0, ge=-30.0, le=-8.0)
    true_peak_ceiling_dbtp: float = Field(default=-1.5, ge=-12.0, le=0.0)
    limiter_lookahead_ms: float = Field(default=5.0, ge=0.5, le=50.0)
    reverb_seconds: float = Field(default=2.8, ge=0.5, le=8.0)
    reverb_t60_sec: float = Field(default=3.2, ge=0.3, le=12.0)


class MemoryConfig(_Section):
    """Memory leak prevention configuration."""

    enable_tracemalloc: bool = False
    enable_gc_tuning: bool = True

    # GC settings
    gc_gen0_threshold: int = Field(default=5000, ge=1)
    gc_gen1_threshold: int = Field(default=50, ge=1)
    gc_gen2_threshold: int = Field(default=50, ge=1)
    auto_gc_enabled: bool = True
    manual_collect_interval: int = Field(default=100, ge=1)

    # Every Nth manual collection is a full (gen 2) one; the others collect gens 0-1 only
    manual_full_collect_every: int = Field(default=10, ge=1)

    # Ingress replicas: no automatic full collection (its pause, 150-390 ms with 1,000 listeners,
    # stops every listener's audio and handshake at once); one full collection this often instead,
    # right after a tick's fan-out. Half an hour keeps its cost under 0.03 % of chunks.
    ingress_full_gc_interval_sec: float = Field(default=1800.0, gt=0.0)

    # Memory monitoring
    leak_detection_threshold_mb_per_hour: float = Field(default=20.0, gt=0.0)
    tracemalloc_frames: int = Field(default=25, ge=1, le=100)
    max_snapshots: int = Field(default=288, ge=2)
    # Growth slope: fit after this fraction of the observed span (warm-up), alert only past min span
    growth_warmup_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    growth_min_span_sec: float = Field(default=600.0, gt=0.0)
    growth_max_measurements: int = Field(default=2048, ge=8)


class MonitoringConfig(_Section):
    """Performance monitoring configuration."""

    # Metrics collection (exported through Ray's metrics export port, set where Ray starts)
    metrics_collection_interval_sec: int = Field(default=5, ge=1)

    # In-process summaries for /api/metrics: recent observations kept per histogram series
    metrics_window_size: int = Field(default=1024, ge=16)
    # Distinct tag sets per metric before new ones fold into "other" (bounded cardinality)
    max_label_sets_per_metric: int = Field(default=64, ge=1)

    # Alerting
    enable_alerts: bool = True
    alert_severity_levels: list[Literal["critical", "high", "medium", "low"]] = Field(
        default_factory=lambda: ["critical", "high", "medium"])
    alert_rate_window: str = Field(default="5m", pattern=r"^[1-9][0-9]*[smhd]$")
    alert_jitter_p99_ms: float = Field(default=50.0, gt=0.0)
    alert_jitter_p95_ms: float = Field(default=20.0, gt=0.0)
    alert_underruns_per_listener_per_min: float = Field(default=1.0, gt=0.0)
    alert_encoding_p99_ms: float = Field(default=5.0, gt=0.0)
    alert_send_errors_per_sec: float = Field(default=1.0, gt=0.0)
    alert_connections_fraction: float = Field(default=0.9, gt=0.0, le=1.0)
    alert_full_gc_per_sec: float = Field(default=0.5, gt=0.0)


# the bitrates of MPEG-1 Layer III at 44.1 kHz, kbit/s
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


class EncodingConfig(_Section):
    """Compressed streams: each station encodes its audio once into Opus and MP3 for all its listeners."""

    # Opus, 48 kHz stereo in 20 ms packets, for the WebSocket `format=opus` and the Ogg stream
    opus_bitrate_kbps: int = Field(default=128, ge=6, le=510)
    # libopus' effort, 0-10: from 5 its pitch pre-filter codes tonal sounds better; 7 adds its signal
    # analysis and 8 a second transform for transients, for about half as much CPU again
    # (benchmarks/bench_codec.py --sweep)
    opus_complexity: int = Field(default=5, ge=0, le=10)
    # MP3, 44.1 kHz stereo at a constant bitrate, for the MP3 stream (joint stereo up to 128 kbit/s)
    mp3_bitrate_kbps: int = 128
    # LAME's quality, 0 (best, slowest) to 9: 7 is its fast mode (`-f`: the psychoacoustic model
    # chooses block types and mid/side, no noise shaping); LAME's own default, 3, shapes the noise
    # and costs about 1.7 times as much, and 2 about 2.6 times (lameenc's LAME; bench_codec.py --sweep)
    mp3_quality: int = Field(default=7, ge=0, le=9)

    @field_validator("mp3_bitrate_kbps")
    @classmethod
    def _an_mp3_bitrate(cls, kbps: int) -> int:
        if kbps not in MP3_BITRATES_KBPS:
            raise ValueError(f"an MP3 bitrate is one of {', '.join(map(str, MP3_BITRATES_KBPS))} kbit/s")
        return kbps


class StationSpec(_Section):
    """One station served at start: a name, a preset and a seed; musical fields override the preset."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    preset: str = "focus"
    seed: int = Field(default=1, ge=0)
    key: str | None = None
    mode: str | None = None
    bpm: float | None = None
    intensity: float | None = None

    @model_validator(mode="after")
    def _playable(self) -> "StationSpec":
        """A known preset, and overrides the station's parameters accept."""
        self.params()
        return self

    def params(self) -> StationParams:
        """The parameters the station starts with: its preset's, with its own fields over them."""
        return StationParams.from_preset(self.preset, key=self.key, mode=self.mode, bpm=self.bpm,
                                         intensity=self.intensity)


class ServerConfig(_Section):
    """Where and how the system is served. Serve's own HTTP door (host, port, route prefix) is Serve's
    configuration: `http_options` and the application's `route_prefix` in configs/serve.yaml."""

    # The listeners' front door without a relay: every ingress replica also accepts on this port
    # (SO_REUSEPORT; the kernel spreads connections over the node's replicas). None: only Serve's
    # own HTTP door (HAProxy or Serve's proxy, http_options.port) and each replica's own port.
    shared_port: int | None = Field(default=None, ge=1, le=65535)
    shared_host: str = "127.0.0.1"
    # Ingress replicas where the deployment has no `autoscaling_config` (configs/serve.yaml has one,
    # which Serve then follows instead: two to start with, more with the listeners)
    ingress_replicas: int = Field(default=1, ge=1)
    # Each open WebSocket holds one of these slots on its replica
    max_ongoing_requests: int = Field(default=5000, ge=1)
    # Bearer token for station control; empty means one is generated at start and printed once
    control_token: str = ""
    # Stations: JSON list in the environment, e.g. AURALIS__SERVER__STATIONS='[{"name":"default"}]'
    stations: list[StationSpec] = Field(default_factory=lambda: [StationSpec(name="default")])
    # How many station actors (processes) hold the stations: station i lives in actor i mod this
    # number. One holds them all (a single node: one process, not one per station); on a cluster,
    # more spread the stations over the nodes (at most one actor per station)
    station_actors: int = Field(default=1, ge=1)
    # Ray namespace of the named actors (synthesis, stations, listener registry)
    namespace: str = Field(default="auralis", min_length=1)
    # Change it to roll out a new version of the deployment with no other change: it travels in the
    # deployment's arguments, so Serve sees a new version and replaces the replicas (rolling update)
    revision: str = "1"

    @field_validator("stations")
    @classmethod
    def _unique_station_names(cls, stations: list[StationSpec]) -> list[StationSpec]:
        names = [s.name for s in stations]
        if len(set(names)) != len(names):
            raise ValueError(f"station names must be unique, got {names}")
        if not stations:
            raise ValueError("at least one station is required")
        return stations


class PerformanceConfig(BaseSettings):
    """Master performance optimization configuration."""

    model_config = SettingsConfigDict(
        env_prefix="AURALIS__",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_assignment=True,
    )

    buffer: BufferConfig = Field(default_factory=BufferConfig)
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    gpu: GPUConfig = Field(default_factory=GPUConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    encoding: EncodingConfig = Field(default_factory=EncodingConfig)

    # Global settings
    target_latency_ms: float = Field(default=100.0, gt=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> "PerformanceConfig":
        if self.buffer.demote_underrun_rate > self.buffer.promote_underrun_rate:
            raise ValueError("buffer.demote_underrun_rate must not exceed buffer.promote_underrun_rate")
        if self.buffer.replica_prefetch_chunks >= self.buffer.lookahead_chunks:
            raise ValueError("buffer.replica_prefetch_chunks must be below buffer.lookahead_chunks")
        if self.buffer.replica_fetch_interval_sec * 2 > self.buffer.replica_prefetch_chunks * CHUNK_SECONDS:
            raise ValueError("buffer.replica_fetch_interval_sec must be at most half of what "
                             f"buffer.replica_prefetch_chunks covers ({CHUNK_SECONDS:g} s a chunk)")
        if self.buffer.ready_ahead_chunks + self.buffer.replica_fetch_interval_sec / CHUNK_SECONDS \
                > self.buffer.replica_prefetch_chunks:
            raise ValueError("buffer.ready_ahead_chunks plus a fetch interval's chunks must fit in "
                             "buffer.replica_prefetch_chunks (or readiness would flicker between fetches)")
        if self.buffer.restart_crossfade_chunks >= self.gpu.render_block_chunks:
            raise ValueError("buffer.restart_crossfade_chunks must be below gpu.render_block_chunks "
                             "(the overlap comes in the new timeline's first block)")
        if self.gpu.render_block_chunks > self.buffer.lookahead_chunks:
            raise ValueError("gpu.render_block_chunks must not exceed buffer.lookahead_chunks")
        if self.buffer.catchup_behind_chunks >= self.buffer.ring_capacity_chunks:
            raise ValueError("buffer.catchup_behind_chunks must be below buffer.ring_capacity_chunks")
        return self


class ConfigError(ValueError):
    """A configuration value is invalid; the message names each bad setting."""


def describe_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(root)"
        env = "AURALIS__" + "__".join(str(p).upper() for p in item["loc"] if not isinstance(p, int))
        lines.append(f"  {path} ({env}): {item['msg']} (got {item.get('input')!r})")
    return "invalid Auralis configuration:\n" + "\n".join(lines)


def load_config(**overrides) -> PerformanceConfig:
    """Build the configuration, raising ConfigError with readable messages."""
    try:
        return PerformanceConfig(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def config_from_json(payload: str) -> PerformanceConfig:
    """Rebuild a configuration passed between processes (actors, replicas) as JSON."""
    return PerformanceConfig.model_validate(json.loads(payload))


@lru_cache(maxsize=1)
def get_config() -> PerformanceConfig:
    return load_config()
