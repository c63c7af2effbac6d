"""Compressed-stream encoding cost: the share of one CPU core each station spends on Opus and MP3.

    python benchmarks/bench_codec.py [--seconds 60] [--preset focus] [--repeats 5]
                                     [--json benchmarks/results/bench_codec.json]

Renders --seconds of a real station with the project's synthesis (as `auralis render` does), then runs
what a station does for every 100 ms chunk, chunk by chunk, on one thread: Opus (encode, Ogg pages, the
`format=opus` WebSocket frame body) and MP3 (encode). The cost of each is this thread's CPU time over
the audio's duration; each figure is the median of --repeats runs (the fastest run is reported too: on
a shared machine, the run with the least interference from neighbours). Also reported: per-chunk
latencies and the bytes each listener receives.

For reference, when the system has its own LAME (Debian's libmp3lame0, which Debian's ffmpeg uses), the
same MP3 settings are timed through it too (ctypes, on the same chunks): the LAME that PyAV's wheels bundle
is the larger part of the cost, and the figure shows how much of it is that build.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auralis_ray.config import GPUConfig  # noqa: E402
from auralis_ray.core_settings import batch_render_config, render_block_frames  # noqa: E402
from auralis_ray.music.params import PRESETS, StationParams  # noqa: E402
from auralis_ray.stream.codecs import Mp3Encoder, OggOpusStream, OpusEncoder, encode_opus_frame  # noqa: E402
from auralis_ray.stream.codecs.encoders import (DEFAULT_BITRATE, DEFAULT_MP3_QUALITY,  # noqa: E402
                                               DEFAULT_OPUS_COMPLEXITY)
from auralis_ray.stream.protocol import CHUNK_BYTES, CHUNK_SECONDS, SAMPLE_RATE  # noqa: E402
from auralis_ray.synth.offline import render_to_wav  # noqa: E402

CORE_BUDGET = 0.03  # both codecs together, per station


def render_chunks(preset: str, seed: int, seconds: float) -> list[bytes]:
    gpu = GPUConfig()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "station.wav"
        render_to_wav(path, StationParams.from_preset(preset), seed, seconds, batch_render_config(gpu),
                      render_block_frames(gpu), progress=False)
        with wave.open(str(path)) as wav:
            pcm = wav.readframes(wav.getnframes())
    return [pcm[i:i + CHUNK_BYTES] for i in range(0, len(pcm) - CHUNK_BYTES + 1, CHUNK_BYTES)]


def opus_station(bitrate: int, complexity: int):
    encoder = OpusEncoder(bitrate=bitrate, complexity=complexity)
    ogg = OggOpusStream(1, encoder.pre_skip, SAMPLE_RATE)

    def step(chunk_id: int, pcm: bytes) -> tuple[int, int]:
        compressed = encoder.encode(chunk_id, pcm)
        pages = ogg.chunk_pages(compressed)
        frame = encode_opus_frame(chunk_id, chunk_id * CHUNK_SECONDS, compressed.packets)
        return len(frame), len(pages)

    return step


def mp3_station(bitrate: int, quality: int):
    encoder = Mp3Encoder(bitrate=bitrate, quality=quality)

    def step(chunk_id: int, pcm: bytes) -> tuple[int, int]:
        payload = len(encoder.encode(chunk_id, pcm).payload)
        return payload, payload

    return step


def system_lame_station(bitrate: int, quality: int):
    """The same MP3 settings through the system's libmp3lame (None when it has none)."""
    name = ctypes.util.find_library("mp3lame")
    if name is None:
        return None
    lame = ctypes.CDLL(name)
    lame.lame_init.restype = ctypes.c_void_p
    lame.lame_encode_buffer_interleaved.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                                    ctypes.c_char_p, ctypes.c_int]

    def make_step():
        flags = ctypes.c_void_p(lame.lame_init())
        for setter, value in (("num_channels", 2), ("in_samplerate", SAMPLE_RATE), ("brate", bitrate // 1000),
                              ("quality", quality), ("VBR", 0)):
            getattr(lame, f"lame_set_{setter}")(flags, value)
        if lame.lame_init_params(flags) != 0:
            raise RuntimeError("the system's LAME refused the settings")
        out = ctypes.create_string_buffer(1 << 16)

        def step(chunk_id: int, pcm: bytes) -> tuple[int, int]:
            size = lame.lame_encode_buffer_interleaved(flags, pcm, len(pcm) // 4, out, len(out))
            return size, size

        return step

    return make_step


def measure(make_step, chunks: list[bytes], repeats: int) -> dict:
    cpus, latencies, sizes = [], [], None
    for _ in range(repeats):
        step = make_step()
        run_latencies, run_sizes = [], [0, 0]
        cpu0 = time.thread_time()
        for chunk_id, pcm in enumerate(chunks):
            started = time.perf_counter()
            first, second = step(chunk_id, pcm)
            run_latencies.append(time.perf_counter() - started)
            run_sizes[0] += first
            run_sizes[1] += second
        cpus.append(time.thread_time() - cpu0)
        latencies += run_latencies
        sizes = run_sizes
    audio_seconds = len(chunks) * CHUNK_SECONDS
    latencies.sort()
    return {
        "core_fraction": statistics.median(cpus) / audio_seconds,
        "core_fraction_best": min(cpus) / audio_seconds,
        "cpu_s_runs": [round(cpu, 4) for cpu in cpus],
        "chunk_ms_p50": 1e3 * latencies[len(latencies) // 2],
        "chunk_ms_p99": 1e3 * latencies[int(len(latencies) * 0.99)],
        "chunk_ms_max": 1e3 * latencies[-1],
        "bytes_per_second": [size / audio_seconds for size in sizes],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--preset", default="focus", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--opus-bitrate", type=int, default=DEFAULT_BITRATE)
    parser.add_argument("--opus-complexity", type=int, default=DEFAULT_OPUS_COMPLEXITY)
    parser.add_argument("--mp3-bitrate", type=int, default=DEFAULT_BITRATE)
    parser.add_argument("--mp3-quality", type=int, default=DEFAULT_MP3_QUALITY)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_codec.json"))
    args = parser.parse_args(argv)

    chunks = render_chunks(args.preset, args.seed, args.seconds)
    load_before = os.getloadavg()
    opus = measure(lambda: opus_station(args.opus_bitrate, args.opus_complexity), chunks, args.repeats)
    mp3 = measure(lambda: mp3_station(args.mp3_bitrate, args.mp3_quality), chunks, args.repeats)
    together = opus["core_fraction"] + mp3["core_fraction"]
    system_lame = system_lame_station(args.mp3_bitrate, args.mp3_quality)
    mp3_system = measure(system_lame, chunks, args.repeats) if system_lame else None
    record = {
        "benchmark": "codec",
        "command": " ".join(["python benchmarks/bench_codec.py", *(argv if argv is not None else sys.argv[1:])]),
        "timestamp": time.time(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "pyav": av.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "preset": args.preset,
        "seed": args.seed,
        "audio_seconds": len(chunks) * CHUNK_SECONDS,
        "repeats": args.repeats,
        "load_average_before": load_before,
        "opus": {"bitrate": args.opus_bitrate, "complexity": args.opus_complexity, **opus},
        "mp3": {"bitrate": args.mp3_bitrate, "quality": args.mp3_quality, **mp3},
        "mp3_through_system_lame": mp3_system and {"library": ctypes.util.find_library("mp3lame"), **mp3_system},
        "together_core_fraction": together,
        "together_core_fraction_best": opus["core_fraction_best"] + mp3["core_fraction_best"],
        "budget_core_fraction": CORE_BUDGET,
        "pass": together <= CORE_BUDGET,
        "load_average_after": os.getloadavg(),
    }
    ws_rate, ogg_rate = opus["bytes_per_second"]
    print(f"{record['audio_seconds']:.0f} s of '{args.preset}', {args.repeats} runs, one thread "
          f"(load average {load_before[0]:.2f} before, {record['load_average_after'][0]:.2f} after)")
    print(f"opus {args.opus_bitrate // 1000} kbit/s, complexity {args.opus_complexity}: "
          f"{100 * opus['core_fraction']:.2f} % of a core (best run {100 * opus['core_fraction_best']:.2f} %), "
          f"chunk p99 {opus['chunk_ms_p99']:.2f} ms; WebSocket frame bodies {ws_rate / 1000:.2f} kB/s, "
          f"Ogg {ogg_rate / 1000:.2f} kB/s")
    print(f"mp3  {args.mp3_bitrate // 1000} kbit/s, quality {args.mp3_quality}: "
          f"{100 * mp3['core_fraction']:.2f} % of a core (best run {100 * mp3['core_fraction_best']:.2f} %), "
          f"chunk p99 {mp3['chunk_ms_p99']:.2f} ms; {mp3['bytes_per_second'][0] / 1000:.2f} kB/s")
    if mp3_system:
        print(f"     the same through the system's LAME ({record['mp3_through_system_lame']['library']}): "
              f"{100 * mp3_system['core_fraction']:.2f} % of a core (best run {100 * mp3_system['core_fraction_best']:.2f} %)")
    print(f"both {100 * together:.2f} % of a core per station (best runs {100 * record['together_core_fraction_best']:.2f} %); "
          f"budget {100 * CORE_BUDGET:.0f} % -> {'PASS' if record['pass'] else 'FAIL'}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0 if record["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
