"""Offline rendering to a 16-bit 44.1 kHz stereo WAV, and the `auralis render` subcommand."""

from __future__ import annotations

import argparse
import math
import wave
from pathlib import Path

from auralis_ray.config import GPUConfig
from auralis_ray.music.params import PRESETS, StationParams
from auralis_ray.synth.engine import CHUNK_FRAMES, OptimizedSynthesisEngine

SAMPLE_RATE = 44100
BLOCK_FRAMES = GPUConfig().render_block_chunks * CHUNK_FRAMES  # the live stream's block size


def render_to_wav(out_path, params: StationParams, seed: int, seconds: float, progress: bool = True) -> None:
    """Render `seconds` of one station (rounded up to 100 ms) into `out_path`."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    total = int(math.ceil(seconds * SAMPLE_RATE / CHUNK_FRAMES)) * CHUNK_FRAMES
    engine = OptimizedSynthesisEngine(sample_rate=SAMPLE_RATE, block_frames=BLOCK_FRAMES, device="cpu")
    engine.add_station("render", params, seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(total / SAMPLE_RATE, 1), unit="s", desc=f"render {params.preset}")
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        written = 0
        while written < total:
            block = engine.render_block()["render"]
            block = block[: total - written]
            wav.writeframes(block.tobytes())
            written += block.shape[0]
            if bar is not None:
                bar.update(round(block.shape[0] / SAMPLE_RATE, 1))
    if bar is not None:
        bar.close()


def _run(args: argparse.Namespace) -> int:
    try:
        params = StationParams.from_preset(args.preset, key=args.key, mode=args.mode, bpm=args.bpm,
                                           intensity=args.intensity)
    except ValueError as error:  # pydantic.ValidationError is a ValueError
        raise SystemExit(f"auralis render: {error}") from None
    render_to_wav(args.out, params, args.seed, args.seconds, progress=not args.quiet)
    return 0


def add_render_subcommand(subparsers) -> None:
    """Register `render` on an argparse subparsers object."""
    p = subparsers.add_parser("render", help="render a preset to a 16-bit 44.1 kHz stereo WAV file")
    p.add_argument("--preset", default="focus", help=f"one of {', '.join(sorted(PRESETS))}")
    p.add_argument("--seconds", type=float, default=180.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="output .wav path")
    p.add_argument("--key", default=None, help="C, F#, Bb, ... (default: the preset's)")
    p.add_argument("--mode", default=None, help="ionian, dorian, phrygian, lydian, mixolydian, aeolian")
    p.add_argument("--bpm", type=float, default=None, help="40-120")
    p.add_argument("--intensity", type=float, default=None, help="0-1")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="auralis")
    add_render_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
