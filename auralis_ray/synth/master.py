"""Master bus: slow loudness control towards a BS.1770 target, then a look-ahead true-peak limiter.

Loudness: the K-weighted power of each 100 ms chunk feeds a running mean (fast at first, then a ~12 s
time constant); the gain moves towards target/mean by at most SLEW_DB per chunk and is ramped linearly
across the chunk. Limiter: the peak of each frame, including the inter-sample point before it
gives the gain that frame needs (the mid-points of a 2x oversampling, a 0.5 dB
margin below the -1 dBTP promise covers the rest of a 4x true-peak meter); a running minimum over W+16 frames followed by a W-frame moving
average is smooth and never exceeds what any frame needs, applied to the signal delayed to match.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from auralis_ray.synth.filters import ChunkedIIR, fir_bank, k_weighting, moving_average, running_min

SLEW_DB = 0.35
GATE_POWER = 10 ** ((-70.0 + 0.691) / 10)
TP_TAPS = 16


def _fractional_delay_bank(taps: int = TP_TAPS, fractions=(0.5,)) -> np.ndarray:
    """[len(fractions), taps] windowed-sinc interpolators between taps/2-1 and taps/2."""
    w = np.zeros((len(fractions), taps))
    for r, frac in enumerate(fractions):
        n = np.arange(taps) - (taps / 2 - 1) - frac
        h = np.sinc(n) * np.kaiser(taps, 6.0)
        w[r] = h / h.sum()
    return w


class MasterBus:
    def __init__(self, sample_rate: int = 44100, sub: int = 4410, target_lufs: float = -16.0,
                 ceiling_dbtp: float = -1.5, lookahead_ms: float = 5.0, device: torch.device | str = "cpu") -> None:
        self.sub = sub
        self.kfilter = ChunkedIIR(k_weighting(sample_rate), sub=sub, device=device)
        self.target_power = 10 ** ((target_lufs + 0.691) / 10)
        self.ceiling = 10 ** (ceiling_dbtp / 20)
        self.W = max(8, int(round(lookahead_ms * 1e-3 * sample_rate)))
        self.tp_w = torch.tensor(_fractional_delay_bank(), dtype=torch.float32, device=device)
        self.alpha_min = 1 - math.exp(-(sub / sample_rate) / 12.0)
        self.delay = self.W + 15 + (TP_TAPS // 2)  # total latency of the limiter path

    def zero_state(self, batch: int, initial_gain: float, device=None) -> dict[str, torch.Tensor]:
        dev = device or self.tp_w.device
        W = self.W
        return {
            "ms_k": self.kfilter.zero_state(batch, 2, dev),
            "ms_agc": torch.tensor([[0.0, 0.0, initial_gain]], dtype=torch.float64).repeat(batch, 1),  # mean, n, gain
            "ms_tp": torch.zeros(batch, 2, TP_TAPS - 1, device=dev),
            "ms_r": torch.ones(batch, 2 * W + 15 - 1, device=dev),
            "ms_x": torch.zeros(batch, 2, W + 15 - 1, device=dev),
        }

    def _agc(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        S, _, N = x.shape
        Q = N // self.sub
        kw, state["ms_k"] = self.kfilter(x, state["ms_k"])
        power = kw.reshape(S, 2, Q, self.sub).square().mean(dim=3).sum(dim=1)  # [S, Q]
        power = power.double().cpu().numpy()
        agc = state["ms_agc"].numpy().copy()
        gains = np.empty((S, Q + 1))
        gains[:, 0] = agc[:, 2]
        max_step = 10 ** (SLEW_DB / 20)
        for q in range(Q):
            p = power[:, q]
            live = p > GATE_POWER
            alpha = np.maximum(1.0 / (agc[:, 1] + 1.0), self.alpha_min)
            agc[:, 0] = np.where(live, agc[:, 0] + alpha * (p - agc[:, 0]), agc[:, 0])
            agc[:, 1] = np.where(live, agc[:, 1] + 1, agc[:, 1])
            want = np.sqrt(self.target_power / np.maximum(agc[:, 0], 1e-12))
            want = np.clip(want, 0.05, 6.0)
            step = np.clip(want / agc[:, 2], 1 / max_step, max_step)
            agc[:, 2] = np.where(agc[:, 1] > 0, agc[:, 2] * step, agc[:, 2])
            gains[:, q + 1] = agc[:, 2]
        state["ms_agc"] = torch.from_numpy(agc)
        g = torch.from_numpy(gains).to(x.device, torch.float32)
        ramp = torch.arange(self.sub, device=x.device, dtype=torch.float32) / self.sub
        curve = torch.addcmul(g[:, :-1, None], (g[:, 1:] - g[:, :-1])[:, :, None], ramp)  # [S, Q, sub]
        return x * curve.reshape(S, 1, N)

    def __call__(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        S, _, N = x.shape
        W = self.W
        x = self._agc(x, state)
        zin = torch.cat([state["ms_tp"], x], dim=2)  # [S, 2, 15 + N]
        state["ms_tp"] = zin[:, :, -(TP_TAPS - 1):]
        inter = fir_bank(zin.reshape(S * 2, -1), self.tp_w).reshape(S, 2, -1, N)
        # frame n of the limiter input: zin[n + 8], i.e. x delayed by 7; inter[n] lies between it and n - 1
        s = zin[:, :, TP_TAPS // 2: TP_TAPS // 2 + N]
        peak = torch.maximum(s.abs().amax(dim=1), inter.abs().amax(dim=(1, 2)))
        peak = torch.maximum(peak, torch.cat([peak[:, :1], peak[:, :-1]], dim=1))  # cover (n-1, n)
        need = torch.clamp(self.ceiling / torch.clamp(peak, min=1e-9), max=1.0)
        r = torch.cat([state["ms_r"], need], dim=1)  # [S, 2W + 14 + N]
        state["ms_r"] = r[:, -(2 * W + 14):]
        if bool((r >= 1.0).all()):  # nothing to limit in the window: unity gain, exactly
            smooth = torch.ones(S, N, device=x.device)
        else:
            hold = running_min(r, W + 16)  # [S, W - 1 + N]
            smooth = moving_average(hold, W)  # [S, N]
        xd = torch.cat([state["ms_x"], s], dim=2)
        state["ms_x"] = xd[:, :, -(W + 14):]
        return xd[:, :, :N] * smooth.unsqueeze(1)
