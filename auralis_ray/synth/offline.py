"""Offline rendering to a 16-bit 44.1 kHz stereo WAV (`auralis render`)."""

from __future__ import annotations

import math
import wave
from pathlib import Path

from auralis_ray.music.params import StationParams
from auralis_ray.synth.engine import CHUNK_FRAMES, BatchRenderConfig, OptimizedSynthesisEngine

SAMPLE_RATE = 44100


def render_to_wav(out_path, params: StationParams, seed: int, seconds: float, config: BatchRenderConfig,
                  block_frames: int, progress: bool = True) -> None:
    """Render `seconds` of one station (rounded up to 100 ms) into `out_path`, on the CPU, in blocks of
    `block_frames` (the live stream's block size gives the live stream's audio)."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    total = int(math.ceil(seconds * SAMPLE_RATE / CHUNK_FRAMES)) * CHUNK_FRAMES
    engine = OptimizedSynthesisEngine(config, sample_rate=SAMPLE_RATE, block_frames=block_frames, device="cpu")
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
