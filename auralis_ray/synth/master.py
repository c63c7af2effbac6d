"""Master bus: slow loudness control towards a BS.1770 target, then a look-ahead true-peak limiter.

Loudness: the K-weighted power of each 100 ms chunk (the 75 %-overlap hop of BS.1770) forms the 400 ms
gating blocks; blocks above the absolute gate (-70 LKFS) feed a running mean, and blocks above the
relative gate (10 LU below that mean) feed the running mean that the gain answers to (fast at first, then
a ~12 s time constant): the control measures what an integrated-loudness meter measures, gating included.
The gain moves towards target/mean by at most SLEW_DB per chunk and is ramped linearly across the chunk.

Limiter: the true peak of each frame is measured as BS.1770 measures it, on the 4x oversampled signal:
the frame and the three interpolated points (1/4, 1/2, 3/4) to the next frame, from a windowed-sinc
interpolator (TP_TAPS taps). Each frame's gain is ceiling / the peak of its own and its neighbours'
points; a running minimum over W + 16 frames followed by a W-frame moving average is smooth and never
exceeds what any frame needs, applied to the signal delayed to match. Blocks whose sample peak cannot
reach the ceiling even with the interpolator's worst-case gain (its L1 norm) skip the interpolation,
tile by tile (10 ms tiles), so quiet passages cost only a sample-peak scan.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from auralis_ray.synth.filters import ChunkedIIR, fir_bank, k_weighting, moving_average, running_min

SLEW_DB = 0.35
GATE_POWER = 10 ** ((-70.0 + 0.691) / 10)  # absolute gate, as a mean-square power
RELATIVE_GATE = 10 ** (-10.0 / 10)  # relative gate: 10 LU below the absolute-gated mean
BLOCK_CHUNKS = 4  # 400 ms gating block = 4 chunks of 100 ms (75 % overlap)
TP_TAPS = 16
TP_FRACTIONS = (0.25, 0.5, 0.75)  # 4x oversampling
TP_TILE = 441  # frames per tile of the true-peak search (divides the 4410-frame chunk)
# AGC state columns
A_ABS, A_NABS, A_REL, A_NREL, A_GAIN, A_SEEN, A_P1, A_P2, A_P3 = range(9)


def _fractional_delay_bank(taps: int = TP_TAPS, fractions=TP_FRACTIONS) -> np.ndarray:
    """[len(fractions), taps] windowed-sinc interpolators between taps/2-1 and taps/2."""
    w = np.zeros((len(fractions), taps))
    for r, frac in enumerate(fractions):
        n = np.arange(taps) - (taps / 2 - 1) - frac
        h = np.sinc(n) * np.kaiser(taps, 6.0)
        w[r] = h / h.sum()
    return w


class MasterBus:
    """The last stage of every station: loudness control towards a LUFS target, then the true-peak limiter."""

    def __init__(self, sample_rate: int = 44100, sub: int = 4410, target_lufs: float = -16.0,
                 ceiling_dbtp: float = -1.5, lookahead_ms: float = 5.0, device: torch.device | str = "cpu") -> None:
        self.sub = sub
        self.kfilter = ChunkedIIR(k_weighting(sample_rate), sub=sub, device=device)
        self.target_power = 10 ** ((target_lufs + 0.691) / 10)
        self.ceiling = 10 ** (ceiling_dbtp / 20)
        self.W = max(8, int(round(lookahead_ms * 1e-3 * sample_rate)))
        bank = _fractional_delay_bank()
        self.tp_w = torch.tensor(bank, dtype=torch.float32, device=device)
        self.ramp = torch.arange(sub, device=device, dtype=torch.float32) / sub  # gain ramp across a chunk
        self.tp_l1 = float(np.abs(bank).sum(axis=1).max())  # worst-case interpolated / sample peak
        self.alpha_min = 1 - math.exp(-(sub / sample_rate) / 12.0)
        self.delay = self.W + 14 + TP_TAPS // 2  # total latency of the limiter path, frames

    def zero_state(self, batch: int, initial_gain: float, device=None) -> dict[str, torch.Tensor]:
        dev = device or self.tp_w.device
        W = self.W
        agc = torch.zeros(batch, 9, dtype=torch.float64)
        agc[:, A_GAIN] = initial_gain
        return {
            "ms_k": self.kfilter.zero_state(batch, 2, dev),
            "ms_agc": agc,
            "ms_tp": torch.zeros(batch, 2, TP_TAPS - 1, device=dev),
            "ms_ip": torch.zeros(batch, 1, device=dev),
            "ms_r": torch.ones(batch, 2 * W + 14, device=dev),
            "ms_x": torch.zeros(batch, 2, W + 14, device=dev),
        }

    def _gains(self, power: list[list[float]], agc: list[list[float]]) -> list[list[float]]:
        """Per station: chunk powers -> gains at the chunk edges (Q + 1); updates agc rows in place."""
        max_step = 10 ** (SLEW_DB / 20)
        out = []
        for p_row, a in zip(power, agc):
            gains = [a[A_GAIN]]
            for p in p_row:
                a[A_SEEN] += 1
                if a[A_SEEN] >= BLOCK_CHUNKS:
                    block = (a[A_P1] + a[A_P2] + a[A_P3] + p) / BLOCK_CHUNKS
                    if block > GATE_POWER:
                        a[A_ABS] += max(1.0 / (a[A_NABS] + 1.0), self.alpha_min) * (block - a[A_ABS])
                        a[A_NABS] += 1
                        if block > RELATIVE_GATE * a[A_ABS]:
                            a[A_REL] += max(1.0 / (a[A_NREL] + 1.0), self.alpha_min) * (block - a[A_REL])
                            a[A_NREL] += 1
                a[A_P1], a[A_P2], a[A_P3] = a[A_P2], a[A_P3], p
                if a[A_NREL] > 0:
                    want = min(max(math.sqrt(self.target_power / max(a[A_REL], 1e-12)), 0.05), 6.0)
                    a[A_GAIN] *= min(max(want / a[A_GAIN], 1.0 / max_step), max_step)
                gains.append(a[A_GAIN])
            out.append(gains)
        return out

    def _agc(self, x: torch.Tensor, state: dict[str, torch.Tensor], kw: torch.Tensor | None = None) -> torch.Tensor:
        S, _, N = x.shape
        Q = N // self.sub
        if kw is None:
            kw, state["ms_k"] = self.kfilter(x, state["ms_k"])
        power = kw.reshape(S, 2, Q, self.sub).square().mean(dim=3).sum(dim=1)  # [S, Q]
        agc = state["ms_agc"].tolist()
        gains = self._gains(power.double().cpu().tolist(), agc)
        state["ms_agc"] = torch.tensor(agc, dtype=torch.float64)
        g = torch.tensor(gains, dtype=torch.float32, device=x.device)
        ramp = self.ramp.to(x.device)
        curve = torch.addcmul(g[:, :-1, None], (g[:, 1:] - g[:, :-1])[:, :, None], ramp)  # [S, Q, sub]
        return x * curve.reshape(S, 1, N)

    def __call__(self, x: torch.Tensor, state: dict[str, torch.Tensor], kweighted: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """x [S, 2, N] -> limited [S, 2, N]; `kweighted`: x through the K-weighting filter, if the caller
        already has it (else it is computed here with the state in ms_k)."""
        S, _, N = x.shape
        W, T = self.W, TP_TAPS
        x = self._agc(x, state, kweighted)
        zin = torch.cat([state["ms_tp"], x], dim=2)  # [S, 2, T - 1 + N]
        state["ms_tp"] = zin[:, :, -(T - 1):]
        s = zin[:, :, T // 2 - 1: T // 2 - 1 + N]  # frame n of the limiter input (x delayed by T/2)
        peak = torch.maximum(s.amax(dim=1), s.amin(dim=1).neg_())  # sample peak per frame [S, N]
        # no interpolated point of a tile can exceed (the tile's window peak) * L1 of the interpolator
        span = zin.unfold(2, TP_TILE + T - 1, TP_TILE)  # [S, 2, tiles, TP_TILE + T - 1] (a view)
        bound = torch.maximum(span.amax(dim=(1, 3)), span.amin(dim=(1, 3)).neg_()) * self.tp_l1  # [S, tiles]
        loud = bound > self.ceiling
        if bool(loud.any()):
            # 4x true peak on the loud tiles: the points 1/4, 1/2, 3/4 of the way from frame n to frame n + 1
            si, ti = torch.nonzero(loud, as_tuple=True)
            win = span[si, :, ti]  # [n_loud, 2, TP_TILE + T - 1]
            pts = fir_bank(win.reshape(-1, TP_TILE + T - 1), self.tp_w)  # [n_loud * 2, 3, TP_TILE]
            tile_peak = pts.view(-1, 2 * len(TP_FRACTIONS), TP_TILE).abs().amax(dim=1)  # [n_loud, TP_TILE]
            inter = torch.zeros(S, N // TP_TILE, TP_TILE, device=x.device)
            inter[si, ti] = tile_peak
            inter = inter.view(S, N)
        else:
            inter = bound.repeat_interleave(TP_TILE, dim=1)  # every point is below the ceiling: a bound will do
        prev = torch.cat([state["ms_ip"], inter[:, :-1]], dim=1)  # points between n - 1 and n
        state["ms_ip"] = inter[:, -1:]
        peak = torch.maximum(peak, torch.maximum(inter, prev))
        xd = torch.cat([state["ms_x"], s], dim=2)
        state["ms_x"] = xd[:, :, -(W + 14):]
        if float(peak.max()) <= self.ceiling and bool((state["ms_r"] >= 1.0).all()):
            return xd[:, :, :N].clone()  # nothing to limit in the window: unity gain, exactly (ms_r stays 1)
        need = torch.clamp(self.ceiling / torch.clamp(peak, min=1e-9), max=1.0)
        r = torch.cat([state["ms_r"], need], dim=1)  # [S, 2W + 14 + N]
        state["ms_r"] = r[:, -(2 * W + 14):]
        hold = running_min(r, W + 16)  # [S, W - 1 + N]
        smooth = moving_average(hold, W)  # [S, N]
        return xd[:, :, :N] * smooth.unsqueeze(1)
