"""Measurements of rendered audio, shared by the tests and the benchmark.

All take float audio shaped [frames, channels] (or int16, converted) at `sr`.
- integrated_lufs: BS.1770 integrated loudness as pyloudnorm computes it.
- true_peak_dbtp: peak of the 4x oversampled signal (polyphase, scipy.signal.resample_poly).
- clicks: samples whose second difference stands far above the second difference of the audio around
  them (a discontinuity); `ratio` is that spike over the local RMS of the second difference.
- dropouts: 100 ms windows whose RMS falls below a floor.
- key_energy_fraction: share of the tonal (peak-over-noise-floor) spectral energy in the key's pitch classes.
- max_similarity: the highest correlation between log-spectrogram windows that start >= min_gap_s apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy import ndimage, signal

_MODES = {
    "ionian": (0, 2, 4, 5, 7, 9, 11), "dorian": (0, 2, 3, 5, 7, 9, 10), "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11), "mixolydian": (0, 2, 4, 5, 7, 9, 10), "aeolian": (0, 2, 3, 5, 7, 8, 10),
}
_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.int16:
        x = x.astype(np.float64) / 32768.0
    x = x.astype(np.float64)
    return x[:, None] if x.ndim == 1 else x


def integrated_lufs(x: np.ndarray, sr: int = 44100) -> float:
    return float(pyloudnorm.Meter(sr).integrated_loudness(as_float(x)))


def true_peak_dbtp(x: np.ndarray, sr: int = 44100) -> float:
    up = signal.resample_poly(as_float(x), 4, 1, axis=0)
    return float(20 * np.log10(max(np.abs(up).max(), 1e-12)))


@dataclass
class ClickReport:
    count: int
    max_ratio: float
    positions: np.ndarray  # frame indices of the spikes


def clicks(x: np.ndarray, sr: int = 44100, ratio: float = 12.0, window_s: float = 0.05,
           floor: float = 2e-4) -> ClickReport:
    """Second-difference spikes more than `ratio` times the local RMS of the second difference."""
    x = as_float(x)
    d2 = np.abs(np.diff(x, n=2, axis=0)).max(axis=1)
    w = max(3, int(window_s * sr))
    c = np.concatenate([[0.0], np.cumsum(d2**2)])
    half = w // 2
    idx = np.arange(d2.size)
    lo, hi = np.clip(idx - half, 0, d2.size), np.clip(idx + half + 1, 0, d2.size)
    local = np.sqrt((c[hi] - c[lo]) / (hi - lo))
    r = d2 / (local + floor)
    hits = np.nonzero(r > ratio)[0]
    return ClickReport(int(hits.size), float(r.max(initial=0.0)), hits + 1)


def dropouts(x: np.ndarray, sr: int = 44100, floor_db: float = -50.0, skip_s: float = 1.0,
             window_s: float = 0.1) -> int:
    """Number of windows (after `skip_s`) whose RMS is below `floor_db` dBFS."""
    x = as_float(x)[int(skip_s * sr):]
    w = int(window_s * sr)
    n = x.shape[0] // w
    rms = np.sqrt((x[: n * w] ** 2).reshape(n, w, -1).mean(axis=(1, 2)))
    return int((20 * np.log10(rms + 1e-12) < floor_db).sum())


def key_pitch_classes(key: str, mode: str) -> set[int]:
    root = (_PC[key[0].upper()] + {"": 0, "#": 1, "b": -1}[key[1:]]) % 12
    return {(root + i) % 12 for i in _MODES[mode]}


def pitch_class_energy(x: np.ndarray, sr: int = 44100, fmin: float = 50.0, fmax: float = 5000.0) -> np.ndarray:
    """Tonal energy per pitch class (12,): Welch spectrum minus twice its running median, mapped to the
    nearest semitone (bins more than 30 cents off a semitone are ignored)."""
    mono = as_float(x).mean(axis=1)
    f, p = signal.welch(mono, sr, nperseg=16384, noverlap=8192)
    base = ndimage.median_filter(p, size=41, mode="nearest")
    tonal = np.clip(p - 2.0 * base, 0.0, None)
    keep = (f >= fmin) & (f <= fmax)
    midi = 69 + 12 * np.log2(f[keep] / 440.0)
    near = np.abs(midi - np.round(midi)) <= 0.3
    energy = np.zeros(12)
    np.add.at(energy, (np.round(midi[near]).astype(int)) % 12, tonal[keep][near])
    return energy


def key_energy_fraction(x: np.ndarray, key: str, mode: str, sr: int = 44100) -> float:
    e = pitch_class_energy(x, sr)
    pcs = sorted(key_pitch_classes(key, mode))
    return float(e[pcs].sum() / max(e.sum(), 1e-30))


def _band_spectrogram(x: np.ndarray, sr: int, hop: int = 1024, bands: int = 98) -> np.ndarray:
    mono = as_float(x).mean(axis=1)
    f, _, z = signal.stft(mono, sr, nperseg=2048, noverlap=2048 - hop, boundary=None, padded=False)
    power = np.abs(z) ** 2
    edges = np.geomspace(40.0, 12000.0, bands + 1)
    idx = np.clip(np.searchsorted(edges, f) - 1, -1, bands)
    out = np.zeros((bands, power.shape[1]))
    for b in range(bands):
        sel = idx == b
        if sel.any():
            out[b] = power[sel].sum(axis=0)
    return 10 * np.log10(out + 1e-10)


def max_similarity(x: np.ndarray, sr: int = 44100, window_s: float = 4.0, min_gap_s: float = 20.0,
                   hop: int = 1024) -> float:
    """Highest similarity between two spectrogram windows of `window_s` that start >= min_gap_s apart:
    the mean, over the window, of the cosine similarity of aligned frames (1.0: one window repeats
    another exactly, i.e. a loop). Frames are log band energies about a semitone wide with the long-term
    average spectrum removed, so what is compared is which notes sound when. Every lag is tried."""
    spec = _band_spectrogram(x, sr, hop=hop)
    spec = spec - spec.mean(axis=1, keepdims=True)
    frames = spec.T / (np.linalg.norm(spec.T, axis=1, keepdims=True) + 1e-12)
    n = frames.shape[0]
    fps = sr / hop
    w, gap = int(window_s * fps), int(min_gap_s * fps)
    if n < gap + w:
        return 0.0
    sim = (frames.astype(np.float32) @ frames.T.astype(np.float32))
    best = -1.0
    for lag in range(gap, n - w + 1):
        d = np.diagonal(sim, lag).astype(np.float64)
        c = np.concatenate([[0.0], np.cumsum(d)])
        best = max(best, float(((c[w:] - c[:-w]) / w).max()))
    return best
