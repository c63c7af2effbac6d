"""Band-limited wavetables and periodic noise tables, in one flat lookup table.

Each oscillator row holds CYCLES periods of SPC samples (so a control segment of voices.GRID frames never
needs a wrap, up to MAX_OSC_HZ) built by additive synthesis with every harmonic below HARMONIC_LIMIT_HZ at the top of the row's
octave: no harmonic can alias. Noise rows are periodic (built in the frequency domain) so reading them
cyclically is seamless. Entries are stored as (value, slope-to-next) pairs so linear interpolation is
one gather and one fused multiply-add.

Slow voices (pads, bass, noise swell) are rendered at a third of the sample rate (voices.SLOW_FACTOR) and
upsampled; their rows ("slow" variants) hold only partials below SLOW_HARMONIC_LIMIT_HZ, far enough below
the 7350 Hz Nyquist of that rate for the upsampler to remove every image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SPC = 1024  # samples per cycle, oscillator rows
CYCLES = 6  # a segment may start anywhere in the first cycle and run GRID * MAX_OSC_HZ / rate cycles
MAX_OSC_HZ = 2700.0  # the highest oscillator frequency read (melody top, MIDI 99, with vibrato and detune)
NOISE_LEN = 1 << 16
GUARD = 64
HARMONIC_LIMIT_HZ = 16000.0
SLOW_HARMONIC_LIMIT_HZ = 6000.0  # rows read at 14.7 kHz (voices.SLOW_FACTOR = 3)
SLOW_FAMILIES = ("pad", "bass", "swell")
MIP_TOP_HZ = tuple(40.0 * 2.0**i for i in range(8))  # highest fundamental each mip level may play


@dataclass(frozen=True)
class Row:
    """Where one wavetable or noise row lies in the flat table."""

    base: int  # offset of the row in the flat table
    spc: int  # samples per cycle (noise: the row length)


def _harmonics(family: str, level: float, f_top: float, limit_hz: float = HARMONIC_LIMIT_HZ) -> np.ndarray:
    n_max = max(1, int(limit_hz // f_top))
    n = np.arange(1, n_max + 1, dtype=np.float64)
    f_ref = f_top / np.sqrt(2.0)
    if family == "pad":  # sawtooth through a gentle low-pass whose corner rises with brightness
        fc = 500.0 * 4.0**level
        amps = 1.0 / n / np.sqrt(1.0 + (n * f_ref / fc) ** 4)
    elif family == "lead":  # soft electric-piano/bell: few harmonic partials
        base = np.array([1.0, 0.35 + 0.3 * level, 0.12 + 0.3 * level, 0.05 + 0.2 * level, 0.0, 0.03 + 0.08 * level])
        amps = np.zeros(n_max)
        amps[: min(n_max, base.size)] = base[:n_max]
    elif family == "bass":
        base = np.array([1.0, 0.3, 0.1, 0.04])
        amps = np.zeros(n_max)
        amps[: min(n_max, base.size)] = base[:n_max]
    else:  # sine
        amps = np.zeros(n_max)
        amps[0] = 1.0
    return amps


def _osc_row(amps: np.ndarray) -> np.ndarray:
    t = np.arange(SPC * CYCLES + 1) / SPC
    rng = np.random.default_rng(7)
    phases = rng.uniform(0, 2 * np.pi, amps.size)
    phases[0] = 0.0
    row = np.zeros(t.size)
    for k, a in enumerate(amps):
        if a != 0.0:
            row += a * np.sin(2 * np.pi * (k + 1) * t + phases[k])
    return row / (np.sqrt(np.mean(row[:-1] ** 2)) * 2.0)  # RMS 0.5


def _noise_row(kind: str, level: float, sample_rate: int, limit_hz: float | None = None) -> np.ndarray:
    rng = np.random.default_rng({"air": 11, "swell": 13}[kind])
    spec = rng.normal(size=NOISE_LEN // 2 + 1) + 1j * rng.normal(size=NOISE_LEN // 2 + 1)
    f = np.fft.rfftfreq(NOISE_LEN, 1.0 / sample_rate)
    f[0] = 1.0
    if kind == "air":
        shape = (f / 5000.0) ** 2 / (1 + (f / 5000.0) ** 2) / (1 + (f / 12000.0) ** 4)
    else:  # pink-ish swell, band-limited; brightness moves the low-pass corner
        fc = 500.0 * 8.0**level
        shape = 1 / np.sqrt(f) * (f / 150.0) ** 2 / (1 + (f / 150.0) ** 2) / np.sqrt(1 + (f / fc) ** 4)
    spec *= shape
    spec[0] = 0.0
    if limit_hz is not None:  # the same noise, band-limited for reading at a lower rate
        spec[f > limit_hz] = 0.0
    row = np.fft.irfft(spec, NOISE_LEN)
    row = row / (np.sqrt(np.mean(row**2)) * 2.0)
    return np.concatenate([row, row[: GUARD + 1]])


class WaveTables:
    """The flat (value, slope) table and the row directory."""

    BRIGHT_LEVELS = 3

    def __init__(self, sample_rate: int = 44100) -> None:
        self.sample_rate = sample_rate
        rows: list[np.ndarray] = [np.zeros(SPC * CYCLES + 1)]
        self.silent = Row(0, SPC)
        self._rows: dict[tuple, Row] = {}
        offset = rows[0].size + 1
        for family, levels in (("pad", 3), ("lead", 3), ("bass", 1), ("sine", 1)):
            for slow in (False, True) if family in SLOW_FAMILIES else (False,):
                limit = SLOW_HARMONIC_LIMIT_HZ if slow else HARMONIC_LIMIT_HZ
                for b in range(levels):
                    for m, f_top in enumerate(MIP_TOP_HZ):
                        row = _osc_row(_harmonics(family, b / max(1, levels - 1), f_top, limit))
                        self._rows[(family, b, m) + ("slow",) * slow] = Row(offset, SPC)
                        rows.append(row)
                        offset += row.size + 1
        for kind, levels in (("air", 1), ("swell", 3)):
            for slow in (False, True) if kind in SLOW_FAMILIES else (False,):
                for b in range(levels):
                    row = _noise_row(kind, b / max(1, levels - 1), sample_rate,
                                     SLOW_HARMONIC_LIMIT_HZ if slow else None)
                    self._rows[(kind, b, 0) + ("slow",) * slow] = Row(offset, NOISE_LEN)
                    rows.append(row)
                    offset += row.size + 1
        flat = np.concatenate([np.append(r, r[-1]) for r in rows])  # one spare entry per row for the slope
        values = flat.astype(np.float32)
        slopes = np.diff(flat, append=flat[-1]).astype(np.float32)
        self.pairs = np.ascontiguousarray(np.stack([values, slopes], axis=1))  # [M, 2] float32

    def row(self, family: str, bright: float, freq_hz: float, slow: bool = False) -> Row:
        """The row for a note; `slow`: the variant band-limited for reading at 1/3 of the sample rate."""
        if family in ("air", "swell"):
            levels = 1 if family == "air" else 3
            return self._rows[(family, int(round(np.clip(bright, 0, 1) * (levels - 1))), 0) + ("slow",) * slow]
        levels = {"pad": 3, "lead": 3, "bass": 1, "sine": 1}[family]
        b = int(round(np.clip(bright, 0.0, 1.0) * (levels - 1)))
        m = next((i for i, top in enumerate(MIP_TOP_HZ) if freq_hz <= top), len(MIP_TOP_HZ) - 1)
        return self._rows[(family, b, m) + ("slow",) * slow]


@lru_cache(maxsize=4)
def wave_tables(sample_rate: int = 44100) -> WaveTables:
    return WaveTables(sample_rate)
