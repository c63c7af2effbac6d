"""OptimizedSynthesisEngine and BatchRenderConfig: batched rendering of every station.

One `render_block()` renders every station: composition and control curves per station (numpy, small),
then one batched torch pass over [stations, voices, samples]: fast lanes (lead, thump, shaker) at 44.1 kHz
and slow lanes (pads, bass, swell) at 14.7 kHz -> reverb send (fast send decimated + slow send) ->
convolution reverb at 14.7 kHz -> return + slow dry voices upsampled 3x -> + fast dry voices -> tone filter
(which also yields the K-weighted signal) -> gated loudness control -> 4x true-peak limiter. All
per-station state is held in batched tensors that are only re-stacked when a station is added or removed;
on a CPU the batch is processed in tiles of about CPU_TILE_FRAMES station-frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from auralis_ray.music.composer import Composer
from auralis_ray.music.now_playing import NowPlaying, sections_over
from auralis_ray.music.params import StationParams
from auralis_ray.synth.device import DeviceInfo, describe_device, select_device
from auralis_ray.synth.filters import ChunkedIIR, biquad_highpass, biquad_lowpass, k_weighting
from auralis_ray.synth.master import MasterBus
from auralis_ray.synth.reverb import ConvolutionReverb
from auralis_ray.synth.tables import wave_tables
from auralis_ray.synth.voices import (FAST_LANES, GRID, SLOW_FACTOR, SLOW_LANES, LaneRenderer, LaneSchedule,
                                     mix_matrix)

log = logging.getLogger(__name__)

CHUNK_FRAMES = 4410  # the station's 100 ms chunk; blocks are whole numbers of chunks
FADE_IN_FRAMES = 2205  # 50 ms
# On a CPU the audio-rate stages are memory-bound: a batch is rendered in tiles of about this many
# station-frames so each stage's working set stays in cache while per-call costs are shared (measured on
# 16 stations: 4 stations per tile at 1 s blocks, 2 at 2 s, 16 at 100 ms; see BENCHMARKS.md).
CPU_TILE_FRAMES = 4 * 44100

# per-preset room: dry level, reverb send level, initial loudness gain
PRESET_SOUND = {
    "focus": (1.0, 0.55, 2.0),
    "meditation": (0.9, 0.75, 2.5),
    "sleep": (0.85, 0.85, 3.0),
    "bright": (1.0, 0.45, 1.6),
}


def _active_lanes(ctrl: np.ndarray, mix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep only lanes that sound in this block: ctrl [5, S, V, Nc], mix [S, 3, V] -> [5, S, Va, Nc],
    [S, 3, Va] with Va the largest number of sounding lanes of any station (padding rows are silent)."""
    active = (ctrl[2] != 0).any(axis=2) | (ctrl[3] != 0).any(axis=2)  # [S, V]
    va = max(1, int(active.sum(axis=1).max()))
    if va == ctrl.shape[2]:
        return ctrl, mix
    S = ctrl.shape[1]
    ls, lv = np.nonzero(active)  # sounding lanes, in lane order per station
    rank = (np.cumsum(active, axis=1) - 1)[ls, lv]
    ctrl_c = np.zeros((5, S, va, ctrl.shape[3]), dtype=np.float32)
    ctrl_c[:, ls, rank] = ctrl[:, ls, lv]
    mix_c = np.zeros((S, 3, va), dtype=np.float32)
    mix_c[ls, :, rank] = mix[ls, :, lv]
    return ctrl_c, mix_c


@dataclass(frozen=True)
class BatchRenderConfig:
    """What the synthesis engine is configured with: batching, compilation, device, master bus and room.

    The configuration tree's `gpu` section owns the values; the edge builds this from it
    (`auralis_ray/core_settings.py`).
    """

    max_batch_size: int  # stations per batched pass (1: one station at a time)
    enable_torch_compile: bool
    compile_mode: str
    warmup_iterations: int
    use_cuda_streams: bool
    device: str  # "auto" picks CUDA > MPS > CPU
    reverb_seconds: float
    reverb_t60_sec: float
    target_lufs: float
    true_peak_ceiling_dbtp: float
    limiter_lookahead_ms: float


@dataclass
class _Station:
    """One station inside the engine: its parameters, composer, lane schedule and timeline position."""

    name: str
    params: StationParams
    seed: int
    composer: Composer
    schedule: LaneSchedule
    mix: np.ndarray
    frame: int = 0  # the station's timeline position (absolute frames, as the composer's notes are)
    fade_left: int = FADE_IN_FRAMES


class OptimizedSynthesisEngine:
    """Synthesis engine with pre-allocated buffers and batch rendering of all stations."""

    def __init__(self, config: BatchRenderConfig, sample_rate: int = 44100, block_frames: int = 44100,
                 device: str | None = None) -> None:
        """`device` overrides `config.device`."""
        if block_frames <= 0 or block_frames % CHUNK_FRAMES or block_frames % SLOW_FACTOR:
            raise ValueError(f"block_frames must be a positive multiple of {CHUNK_FRAMES}, got {block_frames}")
        if sample_rate != 44100:
            raise ValueError("sample_rate must be 44100 (tables and chunking are built for it)")
        self.config = config
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.device = select_device(device or config.device)
        self.device_info: DeviceInfo = describe_device(self.device)
        self.render_count = 0
        self.tables = wave_tables(sample_rate)
        self.lanes = LaneRenderer(self.tables, self.device)
        self.reverb = ConvolutionReverb(sample_rate, block_frames, seconds=config.reverb_seconds,
                                        t60=config.reverb_t60_sec, device=self.device)
        # tone filter and, from the same matrix products, its output K-weighted for the loudness control
        self.tone = ChunkedIIR([biquad_highpass(28.0, 0.707, sample_rate), biquad_lowpass(15000.0, 0.6, sample_rate)]
                               + k_weighting(sample_rate), sub=CHUNK_FRAMES, device=self.device, taps=(2, 4))
        self.master = MasterBus(sample_rate, CHUNK_FRAMES, target_lufs=config.target_lufs,
                                ceiling_dbtp=config.true_peak_ceiling_dbtp,
                                lookahead_ms=config.limiter_lookahead_ms, device=self.device)
        self.fade = torch.sin(0.5 * np.pi * torch.arange(1, FADE_IN_FRAMES + 1, device=self.device,
                                                         dtype=torch.float32) / FADE_IN_FRAMES) ** 2
        self._stations: dict[str, _Station] = {}
        self._order: list[str] = []
        self._state: dict[str, torch.Tensor] = {}
        self._stream = None
        if self.device.type == "cuda" and self.config.use_cuda_streams:
            self._stream = torch.cuda.Stream(device=self.device)
        self._compiled = False
        if self.config.enable_torch_compile:
            self._try_compile()

    # -- stations ----------------------------------------------------------------------------------------
    def add_station(self, station: str, params: StationParams, seed: int, start_frame: int = 0) -> None:
        if station in self._stations:
            raise ValueError(f"station {station!r} already exists")
        dry, wet, gain = PRESET_SOUND[params.preset]
        self._stations[station] = _Station(
            name=station, params=params, seed=int(seed),
            composer=Composer(params, seed, self.sample_rate, start_frame=start_frame, grid=GRID),
            schedule=LaneSchedule.empty(), mix=mix_matrix(dry, wet), frame=start_frame,
        )
        fresh = {"tone": self.tone.zero_state(1, 2, self.device)}
        fresh.update(self.reverb.zero_state(1, self.device))
        fresh.update(self.master.zero_state(1, gain, self.device))
        for key, value in fresh.items():
            self._state[key] = value if key not in self._state else torch.cat([self._state[key], value])
        self._order.append(station)

    def set_params(self, station: str, params: StationParams) -> None:
        st = self._get(station)
        st.params = params
        st.composer.set_params(params)

    def remove_station(self, station: str) -> None:
        self._get(station)
        i = self._order.index(station)
        keep = [j for j in range(len(self._order)) if j != i]
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        for key, value in self._state.items():
            self._state[key] = value.index_select(0, index.to(value.device))
        self._order.pop(i)
        del self._stations[station]

    def stations(self) -> list[str]:
        return list(self._order)

    def now_playing(self, station: str, from_frame: int, to_frame: int) -> list[NowPlaying]:
        """The sections a station plays over [from_frame, to_frame) of its timeline, once rendered: the one
        sounding at from_frame, then each that begins later (`since_chunk_id` counts 100 ms chunks)."""
        return sections_over(self._get(station).composer, from_frame, to_frame, CHUNK_FRAMES)

    def _get(self, station: str) -> _Station:
        try:
            return self._stations[station]
        except KeyError:
            raise KeyError(f"unknown station {station!r}") from None

    # -- rendering ---------------------------------------------------------------------------------------
    def render_block(self) -> dict[str, np.ndarray]:
        """Render the next block of every station: {name: int16 [block_frames, 2], C-contiguous}."""
        if not self._order:
            return {}
        out: dict[str, np.ndarray] = {}
        size = max(1, self.config.max_batch_size)
        if self.device.type == "cpu":
            size = min(size, max(1, CPU_TILE_FRAMES // self.block_frames))
        with torch.inference_mode():
            if self._stream is not None:
                with torch.cuda.stream(self._stream):
                    pcm = [self._render_group(g0, min(len(self._order), g0 + size))
                           for g0 in range(0, len(self._order), size)]
            else:
                pcm = [self._render_group(g0, min(len(self._order), g0 + size))
                       for g0 in range(0, len(self._order), size)]
            pcm_all = (pcm[0] if len(pcm) == 1 else torch.cat(pcm)).cpu().numpy()
        for i, name in enumerate(self._order):
            out[name] = np.ascontiguousarray(pcm_all[i])
            self._stations[name].frame += self.block_frames
        self.render_count += 1
        return out

    def _control(self, st: _Station) -> np.ndarray:
        start, n = st.frame, self.block_frames
        for note in st.composer.compose_until(start + n):
            st.schedule.add(note, self.tables, self.sample_rate)
        st.schedule.prune(start)
        return st.schedule.control(start, n)

    def _render_group(self, g0: int, g1: int) -> torch.Tensor:
        names = self._order[g0:g1]
        N = self.block_frames
        ctrl = np.stack([self._control(self._stations[n]) for n in names], axis=1)  # [5, S, V, Nc]
        mix = np.stack([self._stations[n].mix for n in names])
        state = {k: v[g0:g1] for k, v in self._state.items()}
        # fast lanes at the full rate, slow lanes at 1/SLOW_FACTOR: [S, 3, N] and [S, 3, N / SLOW_FACTOR]
        # fast lanes (lead, percussion) sound in about half their segments: only those are expanded
        fast = self._lanes(ctrl[:, :, FAST_LANES], mix[:, :, FAST_LANES], 1, sparse=True)
        slow = self._lanes(ctrl[:, :, SLOW_LANES], mix[:, :, SLOW_LANES], SLOW_FACTOR)
        send = self.reverb.decimate(fast[:, 2], state).add_(slow[:, 2])
        low = self.reverb.convolve(send, state).add_(slow[:, :2])  # reverb return + slow dry voices
        mix_t = self.reverb.upsample(low, state).add_(fast[:, :2])
        (mix_t, kw), state["tone"] = self.tone(mix_t, state["tone"])
        audio = self.master(mix_t, state, kweighted=kw)
        fades = [self._stations[n].fade_left for n in names]
        if any(fades):
            for i, name in enumerate(names):
                st = self._stations[name]
                if st.fade_left:
                    done = FADE_IN_FRAMES - st.fade_left
                    k = min(st.fade_left, N)
                    audio[i, :, :k] *= self.fade[done:done + k]
                    st.fade_left -= k
        for k, v in state.items():
            self._state[k][g0:g1] = v
        # interleave first, then scale, round and clamp in place on the contiguous copy (faster than on the view)
        pcm = audio.transpose(1, 2).contiguous()  # [S, N, 2]
        return pcm.mul_(32767.0).round_().clamp_(-32767.0, 32767.0).to(torch.int16)

    def _lanes(self, ctrl: np.ndarray, mix: np.ndarray, factor: int, sparse: bool = False) -> torch.Tensor:
        if sparse and not self._compiled and self.device.type == "cpu":
            # (index_add_ is sequential, hence deterministic, on a CPU only)
            return self.lanes.render_sparse(np.ascontiguousarray(ctrl, dtype=np.float32),
                                            np.ascontiguousarray(mix, dtype=np.float32), factor)
        if not self._compiled:  # compaction changes shapes every block, which would make a compiled kernel recompile
            ctrl, mix = _active_lanes(ctrl, mix)
        ctrl_t = torch.from_numpy(np.ascontiguousarray(ctrl, dtype=np.float32)).to(self.device, non_blocking=True)
        mix_t = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)).to(self.device, non_blocking=True)
        return self.lanes.render(ctrl_t, mix_t, factor)

    # -- optional compilation ----------------------------------------------------------------------------
    def _try_compile(self) -> None:
        """Compile the audio-rate lane kernel (the hot loop); on any failure stay eager and say so."""
        eager = self.lanes.render
        try:
            self.lanes.render = torch.compile(eager, mode=self.config.compile_mode)
            with torch.inference_mode():
                for lanes, factor in ((FAST_LANES, 1), (SLOW_LANES, SLOW_FACTOR)):
                    ctrl = torch.zeros(5, 1, len(lanes), self.block_frames // GRID, device=self.device)
                    mix = torch.zeros(1, 3, len(lanes), device=self.device)
                    for _ in range(max(1, self.config.warmup_iterations)):
                        self.lanes.render(ctrl, mix, factor)
            self._compiled = True
        except Exception as error:  # no compiler toolchain, unsupported backend: stay eager
            log.warning("torch.compile unavailable, rendering eagerly: %s", error)
            self.lanes.render = eager
