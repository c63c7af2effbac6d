"""Compressed-stream encoding cost: the share of one CPU core each station spends on Opus and MP3.

    python benchmarks/bench_codec.py [--seconds 60] [--preset focus] [--repeats 5] [--sweep]
                                     [--json benchmarks/results/bench_codec.json]

Renders --seconds of a real station with the project's synthesis (as `auralis render` does), then runs
what a station does for every 100 ms chunk, chunk by chunk, on one thread: Opus (PyAV's libopus: encode,
Ogg pages, the `format=opus` WebSocket frame body) and MP3 (lameenc's LAME: encode, split into frames).
The cost of each is this thread's CPU time over
the audio's duration; each figure is the median of --repeats runs (the fastest run is reported too: on
a shared machine, the run with the least interference from neighbours). Also reported: per-chunk
latencies and the bytes each listener receives.

The budget applies to the station as it runs: a `StationCore` with the default `encoding.*` settings
takes the audio in 2 s blocks, as synthesis pushes it, and a replica fetches once a second, 3 s ahead;
that encodes every wire form of every chunk once (the PCM binary and JSON frames, then Opus, Ogg and MP3
when the chunk is first fetched). --sweep also times the other encoder settings a station could use,
for what each costs (their meaning is in `auralis_ray/config.py`, `EncodingConfig`).

For reference, the same MP3 settings are timed through the LAME that PyAV's wheels bundle (FFmpeg's
libmp3lame encoder, a build about four times slower than lameenc's) and, when the system has its own
LAME (Debian's libmp3lame0, which Debian's ffmpeg uses), through that one (ctypes), on the same chunks.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auralis_ray.config import GPUConfig, load_config  # noqa: E402
from auralis_ray.core_settings import batch_render_config, render_block_frames, station_settings  # noqa: E402
from auralis_ray.music.params import PRESETS, StationParams  # noqa: E402
from auralis_ray.stream.codecs import Mp3Encoder, OggOpusStream, OpusEncoder, encode_opus_frame  # noqa: E402
from auralis_ray.stream.codecs.encoders import lame_input_scale  # noqa: E402
from auralis_ray.stream.pool import AudioChunkPool  # noqa: E402
from auralis_ray.stream.protocol import CHUNK_BYTES, CHUNK_SECONDS, FRAMES_PER_CHUNK, SAMPLE_RATE  # noqa: E402
from auralis_ray.stream.schedule import publish_time  # noqa: E402
from auralis_ray.stream.station import StationCore  # noqa: E402
from auralis_ray.synth.offline import render_to_wav  # noqa: E402

CORE_BUDGET = 0.03  # every form of every chunk, per station
EPOCH = 1_000_000.0
BLOCK_CHUNKS = 20  # what synthesis pushes at a time (gpu.render_block_chunks)
FETCH_EVERY_CHUNKS = 10  # a replica's fetch interval (buffer.replica_fetch_interval_sec)
# other encoder settings --sweep times: (codec, setting, value)
SWEEP = [("opus", "complexity", 3), ("opus", "complexity", 8), ("opus", "complexity", 10),
         ("mp3", "quality", 2), ("mp3", "quality", 3), ("mp3", "quality", 5), ("mp3", "quality", 9)]


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


def pcm_frames():
    pool = AudioChunkPool()

    def step(chunk_id: int, pcm: bytes) -> tuple[int, int]:
        chunk = pool.encode_chunk(chunk_id, chunk_id * CHUNK_SECONDS, pcm)
        return len(chunk.binary), len(chunk.json_head)

    return step


def measure_station_core(chunks: list[bytes], repeats: int) -> dict:
    """A StationCore as the station actor runs it: 2 s blocks in, a replica's fetch every second."""
    settings = station_settings(load_config())
    cpus, sizes = [], {}
    for _ in range(repeats):
        station = StationCore("bench", EPOCH, settings)
        first = station.next_needed_chunk(EPOCH)
        blocks = [b"".join(chunks[i:i + BLOCK_CHUNKS]) for i in range(0, len(chunks), BLOCK_CHUNKS)]
        pushed, fetched_upto, wires = 0, first - 1, []
        cpu0 = time.thread_time()
        for tick in range(0, len(chunks) + settings.lookahead_chunks, FETCH_EVERY_CHUNKS):
            live = first + tick
            now = publish_time(EPOCH, live)
            while pushed < len(blocks) and first + pushed * BLOCK_CHUNKS <= live + settings.lookahead_chunks:
                station.ingest(first + pushed * BLOCK_CHUNKS, blocks[pushed], now=now)
                pushed += 1
            fetched = station.fetch(fetched_upto, settings.replica_prefetch_chunks, now)
            if fetched:
                fetched_upto = fetched[-1][0]
                wires += fetched
        cpus.append(time.thread_time() - cpu0)
        assert len(wires) == len(chunks) and all(len(w) == 8 for w in wires)
        for name, index in (("pcm_binary", 2), ("opus_frame", 4), ("ogg_pages", 6), ("mp3", 7)):
            sizes[name] = sum(len(w[index]) for w in wires)
    audio_seconds = len(chunks) * CHUNK_SECONDS
    return {
        "settings": {"opus_bitrate_kbps": settings.opus_bitrate_kbps, "opus_complexity": settings.opus_complexity,
                     "mp3_bitrate_kbps": settings.mp3_bitrate_kbps, "mp3_quality": settings.mp3_quality},
        "core_fraction": statistics.median(cpus) / audio_seconds,
        "core_fraction_best": min(cpus) / audio_seconds,
        "cpu_s_runs": [round(cpu, 4) for cpu in cpus],
        "bytes_per_second": {name: size / audio_seconds for name, size in sizes.items()},
    }


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


def pyav_lame_station(bitrate: int, quality: int):
    """The same MP3 settings through the LAME that PyAV's wheels bundle (FFmpeg's libmp3lame encoder,
    float input scaled up by LAME's input scale, as Mp3Encoder scales its int16 input)."""
    gain = np.float32(1.0 / (32768.0 * lame_input_scale(bitrate)))
    time_base = Fraction(1, SAMPLE_RATE)

    def make_step():
        context = av.CodecContext.create("libmp3lame", "w")
        context.sample_rate, context.layout, context.format = SAMPLE_RATE, "stereo", "fltp"
        context.bit_rate, context.time_base, context.thread_count = bitrate, time_base, 1
        context.options = {"compression_level": str(quality), "joint_stereo": "1"}
        context.open()

        def step(chunk_id: int, pcm: bytes) -> tuple[int, int]:
            samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1) * gain
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="stereo")
            frame.sample_rate, frame.time_base, frame.pts = SAMPLE_RATE, time_base, chunk_id * FRAMES_PER_CHUNK
            size = sum(packet.size for packet in context.encode(frame))
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
    parser.add_argument("--sweep", action="store_true", help="also time the other encoder settings")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_codec.json"))
    args = parser.parse_args(argv)
    encoding = load_config().encoding
    opus_bitrate, mp3_bitrate = encoding.opus_bitrate_kbps * 1000, encoding.mp3_bitrate_kbps * 1000

    chunks = render_chunks(args.preset, args.seed, args.seconds)
    load_before = os.getloadavg()
    station = measure_station_core(chunks, args.repeats)
    pcm = measure(pcm_frames, chunks, args.repeats)
    opus = measure(lambda: opus_station(opus_bitrate, encoding.opus_complexity), chunks, args.repeats)
    mp3 = measure(lambda: mp3_station(mp3_bitrate, encoding.mp3_quality), chunks, args.repeats)
    together = opus["core_fraction"] + mp3["core_fraction"]
    system_lame = system_lame_station(mp3_bitrate, encoding.mp3_quality)
    mp3_system = measure(system_lame, chunks, args.repeats) if system_lame else None
    mp3_pyav = measure(pyav_lame_station(mp3_bitrate, encoding.mp3_quality), chunks, args.repeats)
    sweep = []
    for codec, setting, value in SWEEP if args.sweep else ():
        if codec == "opus":
            make = functools.partial(opus_station, opus_bitrate, value)
        else:
            options = {"quality": encoding.mp3_quality, setting: value}
            make = functools.partial(mp3_station, mp3_bitrate, **options)
        result = measure(make, chunks, args.repeats)
        sweep.append({"codec": codec, "setting": setting, "value": value, "core_fraction": result["core_fraction"],
                      "core_fraction_best": result["core_fraction_best"]})
    record = {
        "benchmark": "codec",
        "command": " ".join(["python benchmarks/bench_codec.py", *(argv if argv is not None else sys.argv[1:])]),
        "timestamp": time.time(),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "pyav": av.__version__,
        "lameenc": importlib.metadata.version("lameenc"),
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "preset": args.preset,
        "seed": args.seed,
        "audio_seconds": len(chunks) * CHUNK_SECONDS,
        "repeats": args.repeats,
        "load_average_before": load_before,
        "station_core": station,
        "pcm_frames": pcm,
        "opus": {"bitrate": opus_bitrate, "complexity": encoding.opus_complexity, **opus},
        "mp3": {"bitrate": mp3_bitrate, "quality": encoding.mp3_quality, **mp3},
        "mp3_through_pyav_lame": mp3_pyav,
        "mp3_through_system_lame": mp3_system and {"library": ctypes.util.find_library("mp3lame"), **mp3_system},
        "sweep": sweep,
        "together_core_fraction": together,
        "together_core_fraction_best": opus["core_fraction_best"] + mp3["core_fraction_best"],
        "budget_core_fraction": CORE_BUDGET,
        "pass": station["core_fraction"] <= CORE_BUDGET,
        "load_average_after": os.getloadavg(),
    }
    ws_rate, ogg_rate = opus["bytes_per_second"]
    print(f"{record['audio_seconds']:.0f} s of '{args.preset}', {args.repeats} runs, one thread "
          f"(load average {load_before[0]:.2f} before, {record['load_average_after'][0]:.2f} after)")
    print(f"pcm  binary and JSON frames: {100 * pcm['core_fraction']:.2f} % of a core "
          f"(best run {100 * pcm['core_fraction_best']:.2f} %)")
    print(f"opus {opus_bitrate // 1000} kbit/s, complexity {encoding.opus_complexity}: "
          f"{100 * opus['core_fraction']:.2f} % of a core (best run {100 * opus['core_fraction_best']:.2f} %), "
          f"chunk p99 {opus['chunk_ms_p99']:.2f} ms; WebSocket frame bodies {ws_rate / 1000:.2f} kB/s, "
          f"Ogg {ogg_rate / 1000:.2f} kB/s")
    print(f"mp3  {mp3_bitrate // 1000} kbit/s, quality {encoding.mp3_quality}: "
          f"{100 * mp3['core_fraction']:.2f} % of a core (best run {100 * mp3['core_fraction_best']:.2f} %), "
          f"chunk p99 {mp3['chunk_ms_p99']:.2f} ms; {mp3['bytes_per_second'][0] / 1000:.2f} kB/s")
    print(f"     the same through PyAV's LAME: {100 * mp3_pyav['core_fraction']:.2f} % of a core "
          f"(best run {100 * mp3_pyav['core_fraction_best']:.2f} %)")
    if mp3_system:
        print(f"     the same through the system's LAME ({record['mp3_through_system_lame']['library']}): "
              f"{100 * mp3_system['core_fraction']:.2f} % of a core "
              f"(best run {100 * mp3_system['core_fraction_best']:.2f} %)")
    for entry in sweep:
        print(f"     {entry['codec']} {entry['setting']}={entry['value']}: {100 * entry['core_fraction']:.2f} % "
              f"(best run {100 * entry['core_fraction_best']:.2f} %)")
    print(f"both codecs {100 * together:.2f} % of a core (best runs {100 * record['together_core_fraction_best']:.2f} %)")
    print(f"station core, every form of every chunk: {100 * station['core_fraction']:.2f} % of a core per station "
          f"(best run {100 * station['core_fraction_best']:.2f} %); "
          f"budget {100 * CORE_BUDGET:.0f} % -> {'PASS' if record['pass'] else 'FAIL'}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0 if record["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
