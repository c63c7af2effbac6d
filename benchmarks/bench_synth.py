"""Synthesis benchmark: speed (real-time factor) and the audio acceptance checks on long renders.

    python benchmarks/bench_synth.py [--seconds 180] [--json benchmarks/results/bench_synth.json] [--quick]

Speed runs on ONE torch thread: 1 station (at the live 2 s block and at 1 s), then batches of 16 and 64
stations (one render_block call each), and the same 16 and 64 stations rendered one by one (max_batch_size=1) for comparison. Every row
is the median of --repeats timed runs; both wall time and the thread's CPU time are reported (on a shared
machine the CPU time is the steadier figure), with the load average before and after.
Quality renders every preset for --seconds and measures it with tests/audio_checks.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from audio_checks import (clicks, dropouts, integrated_lufs, key_energy_fraction, max_similarity,  # noqa: E402
                          true_peak_dbtp)
from auralis_ray.config import GPUConfig  # noqa: E402
from auralis_ray.core_settings import batch_render_config, render_block_frames  # noqa: E402
from auralis_ray.tools.benchmark import RESULTS_DIR, PerformanceBenchmark  # noqa: E402
from auralis_ray.music.params import PRESETS, StationParams  # noqa: E402
from auralis_ray.synth.engine import OptimizedSynthesisEngine  # noqa: E402

SR = 44100


def speed(stations: int, blocks: int, device: str, block_frames: int = 44100, max_batch_size: int | None = None,
          repeats: int = 5) -> dict:
    batch = max_batch_size or max(1, stations)
    engine = OptimizedSynthesisEngine(batch_render_config(GPUConfig(max_batch_size=batch)), device=device,
                                      block_frames=block_frames)
    names = sorted(PRESETS)
    for i in range(stations):
        engine.add_station(f"s{i}", StationParams.from_preset(names[i % len(names)]), seed=i + 1)
    engine.render_block()  # warm-up
    walls, cpus, per_block = [], [], []
    for _ in range(repeats):
        started, cpu0 = time.perf_counter(), time.thread_time()
        for _ in range(blocks):
            t = time.perf_counter()
            engine.render_block()
            per_block.append(time.perf_counter() - t)
        walls.append(time.perf_counter() - started)
        cpus.append(time.thread_time() - cpu0)
    wall, cpu = float(np.median(walls)), float(np.median(cpus))
    audio = blocks * engine.block_frames / SR
    PerformanceBenchmark.from_latencies(
        f"synthesis_{stations}x_batch{batch}_{round(1000 * block_frames / SR)}ms", per_block,
        wall_sec=sum(walls), cpu_sec=sum(cpus), memory_mb=psutil.Process().memory_info().rss / 2**20,
        device_type=device, timestamp=time.time(), batch_size=batch, concurrent_clients=stations,
        extra={"rtf_throughput": round(stations * audio / wall, 1), "torch_threads": torch.get_num_threads()},
    ).save(RESULTS_DIR)
    return {
        "stations": stations,
        "max_batch_size": batch,
        "block_frames": block_frames,
        "blocks": blocks,
        "repeats": repeats,
        "wall_s_median": round(wall, 4),
        "ms_per_block": round(1e3 * wall / blocks, 2),
        "ms_per_station_second": round(1e3 * wall / (stations * audio), 3),
        "cpu_ms_per_station_second": round(1e3 * cpu / (stations * audio), 3),
        "rtf_each_station": round(audio / wall, 1),
        "rtf_throughput": round(stations * audio / wall, 1),
        "rtf_throughput_cpu": round(stations * audio / cpu, 1),
        # the fastest of the repeats: the code's own cost with the least interference from neighbours
        "rtf_throughput_best": round(stations * audio / min(walls), 1),
        "rtf_throughput_cpu_best": round(stations * audio / min(cpus), 1),
    }


def quality(preset: str, seconds: int, seed: int) -> dict:
    params = StationParams.from_preset(preset)
    engine = OptimizedSynthesisEngine(batch_render_config(GPUConfig()), device="cpu")
    engine.add_station("q", params, seed)
    x = np.concatenate([engine.render_block()["q"] for _ in range(seconds)])  # 1 s blocks
    report = clicks(x)
    return {
        "preset": preset,
        "seconds": seconds,
        "lufs": round(integrated_lufs(x), 2),
        "true_peak_dbtp": round(true_peak_dbtp(x), 2),
        "clicks": report.count,
        "click_max_ratio": round(report.max_ratio, 2),
        "dropouts": dropouts(x),
        "key_energy": round(key_energy_fraction(x, params.key, params.mode), 3),
        "max_similarity_20s": round(max_similarity(x, hop=2048), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer blocks and 60 s renders")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bench_synth.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seconds = 60 if args.quick else args.seconds
    record: dict = {
        "benchmark": "synth",
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "gpu": "none lent to this run" if args.device == "cpu" else args.device,
        "load_average_before": os.getloadavg(),
        "speed": [],
        "quality": [],
    }
    k = 1 if args.quick else 3
    # (stations, blocks per timed run, block frames, max_batch_size: None = all in one batch, 1 = one by one)
    live = render_block_frames(GPUConfig())  # the live stream's block (2 s)
    plan = [(1, 5 * k, live, None), (1, 10 * k, 44100, None), (16, k, live, None), (16, k, live, 1),
            (64, 1, live, None), (64, 1, live, 1), (1, 50 * k, 4410, None), (16, 10 * k, 4410, None),
            (16, 10 * k, 4410, 1), (64, 5 * k, 4410, None)]
    for stations, blocks, block_frames, batch in plan:
        row = speed(stations, blocks, args.device, block_frames, batch, args.repeats)
        record["speed"].append(row)
        print(f"speed {stations:3d} station(s) in batches of {row['max_batch_size']:2d}, {block_frames / SR * 1e3:5.0f} ms "
              f"blocks: {row['ms_per_block']:8.1f} ms per block, {row['ms_per_station_second']:6.2f} ms per "
              f"station-second (CPU {row['cpu_ms_per_station_second']:6.2f}), throughput RTF {row['rtf_throughput']:7.1f}x "
              f"(CPU time {row['rtf_throughput_cpu']:7.1f}x; best of {row['repeats']}: {row['rtf_throughput_best']:7.1f}x)", flush=True)
    record["load_average_after_speed"] = os.getloadavg()
    ok = True
    for preset in sorted(PRESETS):
        q = quality(preset, seconds, args.seed)
        passed = (-20 <= q["lufs"] <= -14 and q["true_peak_dbtp"] <= -1.0 and q["clicks"] == 0
                  and q["dropouts"] == 0 and q["key_energy"] >= 0.8 and q["max_similarity_20s"] < 0.93)
        q["pass"] = passed
        ok &= passed
        record["quality"].append(q)
        print(f"quality {preset:10s} {seconds}s: {q['lufs']:6.2f} LUFS, TP {q['true_peak_dbtp']:5.2f} dBTP, "
              f"clicks {q['clicks']}, dropouts {q['dropouts']}, key {q['key_energy']:.3f}, "
              f"max similarity {q['max_similarity_20s']:.3f} -> {'PASS' if passed else 'FAIL'}", flush=True)
    record["pass"] = ok
    record["load_average_after"] = os.getloadavg()
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
