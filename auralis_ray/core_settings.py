"""The pure core's plain settings, built from the configuration tree.

`stream/` and `synth/` never read `PerformanceConfig`: they take small frozen values. The edge (the
Ray actors, the Serve ingress, the command line and the tools) builds those values here, so each
field of the tree is mapped to the core in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import GPUConfig, PerformanceConfig
from .stream.protocol import FRAMES_PER_CHUNK
from .stream.settings import FeedSettings, SessionSettings, StationSettings

if TYPE_CHECKING:  # the engine imports torch: only where synthesis runs
    from .synth.engine import BatchRenderConfig


def session_settings(config: PerformanceConfig) -> SessionSettings:
    """What each listener's `ClientSession` is configured with."""
    buffer, concurrency = config.buffer, config.concurrency
    return SessionSettings(
        enable_adaptive_tiers=buffer.enable_adaptive_tiers,
        tier_adjustment_interval_chunks=buffer.tier_adjustment_interval_chunks,
        promote_underrun_rate=buffer.promote_underrun_rate,
        demote_underrun_rate=buffer.demote_underrun_rate,
        demote_jitter_ms=buffer.demote_jitter_ms,
        demote_jitter_ms_minimal=buffer.demote_jitter_ms_minimal,
        jitter_window_size=buffer.jitter_window_size,
        jitter_ema_alpha=buffer.jitter_ema_alpha,
        enable_token_bucket=buffer.enable_token_bucket,
        token_bucket_capacity=buffer.token_bucket_capacity,
        token_bucket_refill_rate=buffer.token_bucket_refill_rate,
        client_queue_max_chunks=concurrency.client_queue_max_chunks,
        stalled_client_timeout_sec=concurrency.stalled_client_timeout_sec,
        buffer_status_interval_sec=concurrency.buffer_status_interval_sec,
        max_client_message_bytes=concurrency.max_client_message_bytes,
        client_message_burst=concurrency.client_message_burst,
        client_message_rate=concurrency.client_message_rate,
        ignored_message_limit=concurrency.ignored_message_limit,
        invalid_message_limit=concurrency.invalid_message_limit,
        invalid_message_window_sec=concurrency.invalid_message_window_sec,
    )


def station_settings(config: PerformanceConfig) -> StationSettings:
    """What each station's `StationCore` is configured with."""
    buffer, encoding = config.buffer, config.encoding
    return StationSettings(
        ring_capacity_chunks=buffer.ring_capacity_chunks,
        lookahead_chunks=buffer.lookahead_chunks,
        catchup_behind_chunks=buffer.catchup_behind_chunks,
        chunk_pool_size=buffer.chunk_pool_size,
        replica_prefetch_chunks=buffer.replica_prefetch_chunks,
        restart_crossfade_chunks=buffer.restart_crossfade_chunks,
        replica_fetch_interval_sec=buffer.replica_fetch_interval_sec,
        opus_bitrate_kbps=encoding.opus_bitrate_kbps,
        opus_complexity=encoding.opus_complexity,
        mp3_bitrate_kbps=encoding.mp3_bitrate_kbps,
        mp3_quality=encoding.mp3_quality,
    )


def feed_settings(config: PerformanceConfig) -> FeedSettings:
    """What each ingress replica's `FeedCore` is configured with."""
    buffer = config.buffer
    return FeedSettings(
        ring_capacity_chunks=buffer.ring_capacity_chunks,
        catchup_behind_chunks=buffer.catchup_behind_chunks,
        replica_prefetch_chunks=buffer.replica_prefetch_chunks,
        replica_fetch_interval_sec=buffer.replica_fetch_interval_sec,
        ready_ahead_chunks=buffer.ready_ahead_chunks,
    )


def batch_render_config(gpu: GPUConfig) -> BatchRenderConfig:
    """What the synthesis engine is configured with (imports torch)."""
    from .synth.engine import BatchRenderConfig

    return BatchRenderConfig(
        max_batch_size=gpu.max_batch_size if gpu.enable_batch_processing else 1,
        enable_torch_compile=gpu.enable_torch_compile,
        compile_mode=gpu.compile_mode,
        warmup_iterations=gpu.warmup_iterations,
        use_cuda_streams=gpu.enable_cuda_streams,
        device=gpu.device,
        reverb_seconds=gpu.reverb_seconds,
        reverb_t60_sec=gpu.reverb_t60_sec,
        target_lufs=gpu.target_lufs,
        true_peak_ceiling_dbtp=gpu.true_peak_ceiling_dbtp,
        limiter_lookahead_ms=gpu.limiter_lookahead_ms,
    )


def render_block_frames(gpu: GPUConfig) -> int:
    """Frames per synthesis render call: `gpu.render_block_chunks` chunks of 100 ms."""
    return gpu.render_block_chunks * FRAMES_PER_CHUNK
