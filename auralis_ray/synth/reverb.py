"""A real reverb: uniformly partitioned FFT convolution with a synthetic stereo hall response.

The send is decimated by 3 (44.1 kHz -> 14.7 kHz, anti-alias FIR), convolved with a decorrelated
stereo impulse response whose high bands decay faster than the low ones, and interpolated back.
The three steps are separate (`decimate`, `convolve`, `upsample`) so the engine can add the slow voices,
rendered at 14.7 kHz, to the send before the convolution and to the return before the one upsampling:
the interpolator (72 taps, passband to ~6 kHz, images of anything below 6 kHz rejected by >= 65 dB) is
good enough for dry signals.
One partition is one block (at the decimated rate), so a 1 s block costs one FFT in and two out plus
K complex multiply-adds per bin (FFT length: the first fast size >= 2 partitions, see `_fft_size`);
overlap-save is exact linear convolution, so other block sizes give the
same samples up to float rounding. State: FIR histories, the previous input partition and the frequency-domain
delay line of past input spectra.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from auralis_ray.synth.filters import decimate_fir, fir_bank

DECIMATION = 3
FIR_TAPS = 48  # anti-alias FIR of the send
DEC_CHUNK = 21  # decimated samples per GEMM row (divides the 1470 of a 100 ms chunk)
UP_CHUNK = 14  # low-rate samples per GEMM row of the interpolator (divides 1470)
INTERP_TAPS = 72  # multiple of DECIMATION (polyphase interpolation)
INTERP_CUTOFF_HZ = 7350.0
INTERP_BETA = 6.8


def _kaiser_lowpass(taps: int, cutoff_hz: float, fs: float, beta: float = 7.0) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff_hz / fs * np.sinc(2 * cutoff_hz / fs * n) * np.kaiser(taps, beta)
    return h / h.sum()


def _fft_size(n: int) -> int:
    """The smallest m * 2^k >= n with m in (1, 3, 5, 15): FFT lengths both pocketfft and MKL do fast (for
    1 s blocks 2P = 29400 = 2^3 3 5^2 7^2 becomes 30720 = 2^11 15, ~1.4x faster per transform)."""
    best = None
    for m in (1, 3, 5, 15):
        k = m
        while k < n:
            k *= 2
        best = k if best is None else min(best, k)
    return best


@lru_cache(maxsize=8)
def hall_impulse(rate: int, seconds: float, t60: float, seed: int = 2024) -> np.ndarray:
    """Stereo [2, n] impulse response at `rate`: 12 ms pre-delay, band-wise exponential decay, fade-out."""
    n = int(round(seconds * rate))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    edges = [0.0, 400.0, 1500.0, 3500.0, rate / 2 + 1]
    decays = [1.25, 1.0, 0.7, 0.45]
    out = np.zeros((2, n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    for ch in range(2):
        noise = np.fft.rfft(rng.normal(size=n))
        for lo, hi, k in zip(edges[:-1], edges[1:], decays):
            band = np.fft.irfft(noise * ((freqs >= lo) & (freqs < hi)), n)
            out[ch] += band * np.exp(-6.91 * t / (t60 * k))
    predelay = int(0.012 * rate)
    out = np.concatenate([np.zeros((2, predelay)), out[:, : n - predelay]], axis=1)
    ramp = np.clip((np.arange(n) - predelay) / (0.004 * rate), 0, 1)
    tail = np.clip((n - np.arange(n)) / (0.5 * rate), 0, 1)
    out *= ramp * np.sin(0.5 * np.pi * tail) ** 2
    out /= np.sqrt((out**2).sum(axis=1, keepdims=True))
    return out


class ConvolutionReverb:
    """Stereo hall reverb for a batch of stations: decimate, partitioned FFT convolution, upsample."""

    def __init__(self, sample_rate: int = 44100, block_frames: int = 44100, seconds: float = 2.8,
                 t60: float = 3.2, device: torch.device | str = "cpu") -> None:
        if block_frames % DECIMATION:
            raise ValueError("block_frames must be a multiple of the decimation")
        self.rate = sample_rate // DECIMATION
        self.P = block_frames // DECIMATION
        ir = hall_impulse(self.rate, seconds, t60)
        self.K = -(-ir.shape[1] // self.P)
        self.nfft = _fft_size(2 * self.P)
        self.bins = self.nfft // 2 + 1
        ir = np.concatenate([ir, np.zeros((2, self.K * self.P - ir.shape[1]))], axis=1)
        parts = ir.reshape(2, self.K, self.P)
        padded = np.concatenate([parts, np.zeros((2, self.K, self.nfft - self.P))], axis=2)
        H = np.fft.rfft(padded, axis=2)  # [2, K, bins]
        # oldest partition first, so a window of the delay line multiplies H reversed
        self.H = torch.tensor(H[:, ::-1].copy(), dtype=torch.complex64, device=device)
        h = _kaiser_lowpass(FIR_TAPS, 5600.0, sample_rate)
        self.dec_w = torch.tensor(h[::-1].copy(), dtype=torch.float32, device=device)
        # the same FIR as one GEMM: DEC_CHUNK outputs from one window of DECIMATION * DEC_CHUNK + FIR_TAPS - 3
        # inputs times a banded [window, DEC_CHUNK] matrix (no 16x-expanded unfold copy of the send)
        self.dec_window = DECIMATION * DEC_CHUNK + FIR_TAPS - DECIMATION
        band = np.zeros((self.dec_window, DEC_CHUNK))
        for c in range(DEC_CHUNK):
            band[DECIMATION * c:DECIMATION * c + FIR_TAPS, c] = h[::-1]
        self.dec_band = torch.tensor(band, dtype=torch.float32, device=device)
        taps_per_phase = INTERP_TAPS // DECIMATION
        hi = DECIMATION * _kaiser_lowpass(INTERP_TAPS, INTERP_CUTOFF_HZ, sample_rate, INTERP_BETA)
        w = np.zeros((DECIMATION, 1, taps_per_phase))
        for r in range(DECIMATION):
            for j in range(taps_per_phase):
                w[r, 0, j] = hi[DECIMATION * (taps_per_phase - 1 - j) + r]
        self.int_w = torch.tensor(w[:, 0], dtype=torch.float32, device=device)
        self.int_hist_len = taps_per_phase - 1
        # the same interpolator as one GEMM: UP_CHUNK inputs' worth of output (3 phases, already interleaved)
        # from one window of UP_CHUNK + taps_per_phase - 1 inputs times a banded matrix
        self.up_window = UP_CHUNK + taps_per_phase - 1
        band = np.zeros((self.up_window, UP_CHUNK * DECIMATION))
        for c in range(UP_CHUNK):
            for r in range(DECIMATION):
                band[c:c + taps_per_phase, c * DECIMATION + r] = w[r, 0]
        self.up_band = torch.tensor(band, dtype=torch.float32, device=device)

    def zero_state(self, batch: int, device=None) -> dict[str, torch.Tensor]:
        dev = device or self.H.device
        return {
            "rv_dec": torch.zeros(batch, FIR_TAPS - 1, device=dev),
            "rv_prev": torch.zeros(batch, self.nfft - self.P, device=dev),
            "rv_fdl": torch.zeros(batch, self.K - 1, self.bins, dtype=torch.complex64, device=dev),
            "rv_int": torch.zeros(batch, 2, self.int_hist_len, device=dev),
        }

    def __call__(self, send: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """send [S, N] -> wet [S, 2, N]; updates `state` in place (new tensors)."""
        return self.upsample(self.convolve(self.decimate(send, state), state), state)

    def decimate(self, send: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """[S, N] at the full rate -> [S, N / 3] (anti-aliased)."""
        xin = torch.cat([state["rv_dec"], send], dim=1)
        state["rv_dec"] = xin[:, -(FIR_TAPS - 1):]
        n = send.shape[1] // DECIMATION
        if n % DEC_CHUNK:
            return decimate_fir(xin, self.dec_w, DECIMATION)
        return (xin.unfold(1, self.dec_window, DECIMATION * DEC_CHUNK) @ self.dec_band).reshape(send.shape[0], n)

    def convolve(self, y: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """[S, n] at the low rate -> wet [S, 2, n] at the low rate (overlap-save, one partition per P)."""
        S, n = y.shape
        Q = n // self.P
        xin = torch.cat([state["rv_prev"], y], dim=1)
        frames = xin.unfold(1, self.nfft, self.P)  # [S, Q, nfft]
        state["rv_prev"] = xin[:, -(self.nfft - self.P):]
        if frames.device.type == "cpu":  # numpy's pocketfft: ~2x MKL's r2c at these lengths on one thread
            X = torch.from_numpy(np.fft.rfft(frames.numpy(), axis=2).astype(np.complex64, copy=False))  # [S, Q, bins]
        else:
            X = torch.fft.rfft(frames, dim=2)  # [S, Q, bins]
        fdl = torch.cat([state["rv_fdl"], X], dim=1)  # [S, K-1+Q, bins]
        state["rv_fdl"] = fdl[:, Q:]
        if Q == 1:
            Y = (fdl.unsqueeze(1) * self.H).sum(dim=2, keepdim=True)  # [S, 2, 1, bins]
        else:
            Y = torch.stack([(fdl[:, q:q + self.K].unsqueeze(1) * self.H).sum(dim=2) for q in range(Q)], dim=2)
        return torch.fft.irfft(Y, n=self.nfft, dim=3)[..., self.nfft - self.P:].reshape(S, 2, Q * self.P)

    def upsample(self, z: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """[S, 2, n] at the low rate -> [S, 2, 3 n] (polyphase band-limited interpolation)."""
        S, _, n = z.shape
        zin = torch.cat([state["rv_int"], z], dim=2)
        state["rv_int"] = zin[:, :, -self.int_hist_len:]
        if n % UP_CHUNK == 0:
            return (zin.unfold(2, self.up_window, UP_CHUNK) @ self.up_band).reshape(S, 2, n * DECIMATION)
        up = fir_bank(zin.reshape(S * 2, -1), self.int_w)  # [S*2, 3, n]
        return up.transpose(1, 2).reshape(S, 2, n * DECIMATION)
