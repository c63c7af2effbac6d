"""`auralis soak`: push hours of audio through the real station pipeline as fast as it runs.

Synthesis (the same engine the live stream uses) -> StationCore (encode once into the ring) ->
a replica-side BroadcastRingBuffer -> ClientSessions (pump and take_frames, as the fan-out does), with
the process's RSS fed to a MemoryGrowthTracker against *simulated* stream time. The report is
the memory slope in MB per hour of audio.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import asdict, dataclass

import psutil

from ..config import PerformanceConfig, load_config
from ..core_settings import batch_render_config, render_block_frames, session_settings, station_settings
from ..monitor.memory import MemoryGrowthTracker
from ..stream.broadcast import BroadcastRingBuffer
from ..stream.client import ClientSession
from ..stream.pool import EncodedChunk
from ..stream.station import StationCore
from ..stream.protocol import CHUNK_SECONDS
from .benchmark import BenchmarkRun


@dataclass
class SoakReport:
    """The result of a soak run: audio rendered, time taken, memory slope and verdict."""

    hours_equivalent: float
    audio_seconds: float
    wall_seconds: float
    speed_x_realtime: float
    chunks: int
    listeners: int
    # chunks the listeners took: each from the chunk at which it joined, skipped forward by `overruns`
    chunks_sent: int
    overruns: int
    rss_start_mb: float
    rss_end_mb: float
    slope_mb_per_hour: float
    growth_percent: float
    alert: str | None
    passed: bool


def run_soak(hours_equivalent: float, listeners: int = 4, config: PerformanceConfig | None = None,
             sample_every_audio_sec: float = 60.0, progress: bool = False,
             save_record: bool = True) -> SoakReport:
    import torch

    from ..music.params import StationParams
    from ..synth.engine import OptimizedSynthesisEngine

    config = config or load_config()
    torch.set_num_threads(config.gpu.torch_threads)
    epoch = 0.0
    station = StationCore("soak", epoch, station_settings(config))
    block_chunks = config.gpu.render_block_chunks
    engine = OptimizedSynthesisEngine(batch_render_config(config.gpu), block_frames=render_block_frames(config.gpu))
    engine.add_station("soak", StationParams.from_preset("focus"), seed=5)
    replica_ring = BroadcastRingBuffer(config.buffer.ring_capacity_chunks, config.buffer.catchup_behind_chunks)
    sessions = []
    left: list[ClientSession] = []  # listeners that reconnected

    process = psutil.Process()
    tracker = MemoryGrowthTracker.from_config(config.memory)
    total_blocks = max(1, int(hours_equivalent * 3600 / (block_chunks * CHUNK_SECONDS)))
    first_chunk = next_chunk = station.next_needed_chunk(epoch)  # where synthesis attaches, as live
    next_sample = 0.0
    started = time.perf_counter()
    rss_start = process.memory_info().rss / 2**20
    with BenchmarkRun() as run:
        for block in range(total_blocks):
            block_started = time.perf_counter()
            pcm = engine.render_block()["soak"].tobytes()
            station.ingest(next_chunk, pcm)
            for wire in station.fetch(next_chunk - 1, 0, now=epoch + (next_chunk + block_chunks) * CHUNK_SECONDS):
                chunk = EncodedChunk.from_transfer(wire)
                replica_ring.write_chunk(chunk)
                now = chunk.timestamp
                if not sessions:  # listeners join once there is audio, and cycle through reconnects
                    sessions = [_session(i, replica_ring, config, now) for i in range(listeners)]
                for s in sessions:
                    s.pump(now)
                    s.sent(s.take_frames(now))
                    if s.status_due(now):
                        s.queue_status(now)
            next_chunk += block_chunks
            run.record(time.perf_counter() - block_started)
            audio_now = next_chunk * CHUNK_SECONDS
            if block % 600 == 599:  # every 600 blocks (20 simulated minutes at 2 s blocks) one listener reconnects
                old = sessions.pop(0)
                old.disconnect()
                left.append(old)
                sessions.append(_session(block, replica_ring, config, audio_now))
            if audio_now >= next_sample:
                gc.collect()
                tracker.record("soak", now=audio_now, rss_mb=process.memory_info().rss / 2**20)
                next_sample += sample_every_audio_sec
                if progress:
                    print(f"\r{audio_now / 3600:6.2f} h of audio, RSS {tracker.measurements[-1].rss_mb:7.1f} MB",
                          end="", flush=True)
        if progress:
            print()
    if save_record:
        run.result("soak_station_pipeline_per_block", device_type=str(engine.device_info.device_type),
                   concurrent_clients=listeners, batch_size=1,
                   extra={"hours_equivalent": hours_equivalent, "slope_mb_per_hour": tracker.get_growth_rate(),
                          "block_seconds": block_chunks * CHUNK_SECONDS}).save()
    wall = time.perf_counter() - started
    rss_end = process.memory_info().rss / 2**20
    slope = tracker.get_growth_rate()
    audio_seconds = (next_chunk - first_chunk) * CHUNK_SECONDS
    fitted = tracker.fitted()
    growth = 100.0 * (fitted[-1].rss_mb - fitted[0].rss_mb) / fitted[0].rss_mb if len(fitted) > 1 else 0.0
    every = sessions + left
    return SoakReport(
        hours_equivalent=audio_seconds / 3600, audio_seconds=audio_seconds, wall_seconds=round(wall, 2),
        speed_x_realtime=round(audio_seconds / wall, 1), chunks=next_chunk - first_chunk, listeners=listeners,
        chunks_sent=sum(s.state.chunks_sent for s in every), overruns=sum(s.state.overruns for s in every),
        rss_start_mb=round(rss_start, 1), rss_end_mb=round(rss_end, 1), slope_mb_per_hour=round(slope, 3),
        growth_percent=round(growth, 2), alert=tracker.check_alert(),
        passed=slope < 1.0 and growth < 10.0,
    )


def _session(i: int, ring: BroadcastRingBuffer, config: PerformanceConfig, now: float) -> ClientSession:
    s = ClientSession(client_id=f"soak-{i}", station="soak", fmt="json" if i % 2 else "binary", ring=ring,
                      settings=session_settings(config), now=now, server_version="soak")
    s.open(now)
    return s


def add_soak_subcommand(subparsers) -> None:
    parser = subparsers.add_parser("soak", help="push hours of audio through the station pipeline; report memory slope")
    parser.add_argument("--hours-equivalent", type=float, default=8.0)
    parser.add_argument("--listeners", type=int, default=4)
    parser.add_argument("--json-out", default=None)
    parser.set_defaults(func=_cmd_soak)


def _cmd_soak(args: argparse.Namespace) -> int:
    report = run_soak(args.hours_equivalent, args.listeners, progress=True)
    text = json.dumps(asdict(report), indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)
    return 0 if report.passed else 1
