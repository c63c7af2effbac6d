"""The plain settings the streaming core takes: frozen values, no configuration tree.

The edge (the Ray actors, the Serve ingress, the tools) builds them from `PerformanceConfig`
(`auralis_ray/core_settings.py`), so this package imports nothing above it. Each field has the name
of the configuration field it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionSettings:
    """What one listener's session is configured with (`buffer.*` and `concurrency.*` fields)."""

    # tier adaptation of the listener's outbox
    enable_adaptive_tiers: bool
    tier_adjustment_interval_chunks: int
    promote_underrun_rate: float
    demote_underrun_rate: float
    demote_jitter_ms: float
    demote_jitter_ms_minimal: float
    # jitter of the chunks' departures
    jitter_window_size: int
    jitter_ema_alpha: float
    # pacing of audio into the outbox (tokens are chunks)
    enable_token_bucket: bool
    token_bucket_capacity: int
    token_bucket_refill_rate: float
    # the outbox, stalls and status messages
    client_queue_max_chunks: int
    stalled_client_timeout_sec: float
    buffer_status_interval_sec: float
    # what the listener sends
    max_client_message_bytes: int
    client_message_burst: int
    client_message_rate: float
    ignored_message_limit: int
    invalid_message_limit: int
    invalid_message_window_sec: float


@dataclass(frozen=True)
class StationSettings:
    """What one station's encoded timeline is configured with (`buffer.*` and `encoding.*` fields)."""

    ring_capacity_chunks: int
    lookahead_chunks: int
    catchup_behind_chunks: int
    chunk_pool_size: int
    replica_prefetch_chunks: int
    restart_crossfade_chunks: int
    replica_fetch_interval_sec: float  # how often a replica fetches (a compressed listener's asks)
    # the station's compressed streams
    opus_bitrate_kbps: int
    opus_complexity: int
    mp3_bitrate_kbps: int
    mp3_quality: int


@dataclass(frozen=True)
class FeedSettings:
    """What one station's feed on an ingress replica is configured with (`buffer.*` fields)."""

    ring_capacity_chunks: int
    catchup_behind_chunks: int
    replica_prefetch_chunks: int  # how far past the live edge a fetch reaches
    replica_fetch_interval_sec: float
    ready_ahead_chunks: int
