"""Voices: notes -> lanes -> control-rate curves (numpy) -> audio (torch, [stations, voices, samples]).

A station has a fixed set of lanes (voices). Each note is given a lane that is free for the note's whole
life, release tail included. Phase and envelope are analytic functions of the time since the note's
onset, evaluated every GRID frames (control rate, float64) and expanded to audio rate in torch by one
fused multiply-add per segment; onsets and ends lie on the grid, so a lane switches notes only where its
envelope is zero. Nothing depends on where a block starts or ends: release tails cross block and phrase
boundaries untouched and oscillators never restart.

Slow lanes (pads, bass, swell: nothing above SLOW_HARMONIC_LIMIT_HZ) are expanded at a third of the rate
(every SLOW_FACTOR-th frame of the same analytic curves, from band-limited "slow" table rows) and
upsampled later together with the reverb return; fast lanes (lead, thump, shaker) run at the full rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from auralis_ray.music.composer import Note
from auralis_ray.music.theory import midi_to_hz
from auralis_ray.synth.reverb import DECIMATION
from auralis_ray.synth.tables import WaveTables

GRID = 63  # control period in frames, 1.4 ms (divides the 4410-frame chunk; see tables.CYCLES)
# slow lanes are rendered at sample_rate / SLOW_FACTOR: the reverb's own rate, so the engine adds them
# to its send and its return before the one upsampling
SLOW_FACTOR = DECIMATION
assert GRID % SLOW_FACTOR == 0, "the control grid must fall on slow-lane frames"

# lane layout: (instrument, lanes, pans in [-1, 1], reverb send, table family)
LAYOUT = (
    ("pad", (-0.75, 0.75, -0.45, 0.45, -0.2, 0.2, -0.6, 0.6), 0.55, "pad"),
    ("bass", (-0.05, 0.05), 0.12, "bass"),
    ("lead", (-0.35, 0.1, 0.45), 0.7, "lead"),
    ("thump", (0.0,), 0.08, "sine"),
    ("shaker", (0.3,), 0.35, "air"),
    ("swell", (-0.1,), 0.8, "swell"),
)
SLOW_INSTRUMENTS = ("pad", "bass", "swell")
LANES: dict[str, list[int]] = {}
PANS: list[float] = []
SENDS: list[float] = []
FAMILY: dict[str, str] = {}
for _name, _pans, _send, _family in LAYOUT:
    LANES[_name] = list(range(len(PANS), len(PANS) + len(_pans)))
    PANS.extend(_pans)
    SENDS.extend([_send] * len(_pans))
    FAMILY[_name] = _family
VOICES = len(PANS)
SLOW_LANES = [v for name in SLOW_INSTRUMENTS for v in LANES[name]]
FAST_LANES = [v for v in range(VOICES) if v not in SLOW_LANES]

# per-instrument modulation: vibrato depth (ratio), vibrato rate (Hz), pitch-drop ratio, drop time (s)
_MOD = {
    "pad": (0.0009, 0.23, 1.0, 0.0),
    "bass": (0.0, 0.0, 1.0, 0.0),
    "lead": (0.0022, 4.6, 1.0, 0.0),
    "thump": (0.0, 0.0, 2.2, 0.035),
    "shaker": (0.0, 0.0, 1.0, 0.0),
    "swell": (0.0, 0.0, 1.0, 0.0),
}

# columns of the per-note parameter matrix
(C_START, C_GATE, C_REL, C_ATT, C_DEC, C_SUS, C_VEL, C_INC, C_PHI, C_VIB, C_VRATE, C_DROP, C_DTAU, C_BASE,
 C_SPC) = range(15)


def mix_matrix(dry: float, wet: float) -> np.ndarray:
    """[3, VOICES]: rows dry-left, dry-right, reverb send (equal-power pan)."""
    m = np.zeros((3, VOICES), dtype=np.float32)
    for v, (pan, send) in enumerate(zip(PANS, SENDS)):
        angle = (pan + 1) * math.pi / 4
        m[0, v] = dry * math.cos(angle) * math.sqrt(2)
        m[1, v] = dry * math.sin(angle) * math.sqrt(2)
        m[2, v] = wet * send
    return m


@dataclass
class LaneSchedule:
    """The notes of one station that are still sounding or yet to sound, with their lanes."""

    lane_free: np.ndarray  # frame from which each lane is free
    rows: list  # per-note parameter rows (list of np arrays), with lane
    lanes: list
    dropped: int = 0

    @classmethod
    def empty(cls) -> "LaneSchedule":
        return cls(np.zeros(VOICES, dtype=np.int64), [], [], 0)

    def add(self, note: Note, tables: WaveTables, sample_rate: int) -> None:
        candidates = [v for v in LANES[note.instrument] if self.lane_free[v] <= note.start]
        if not candidates:
            self.dropped += 1
            return
        lane = min(candidates, key=lambda v: (self.lane_free[v], v))
        self.lane_free[lane] = note.end
        family = FAMILY[note.instrument]
        slow = note.instrument in SLOW_INSTRUMENTS
        vib, vrate, drop, dtau = _MOD[note.instrument]
        if family in ("air", "swell"):
            row = tables.row(family, note.bright, 0.0, slow)
            inc = 1.0 / row.spc
            freq = 0.0
        else:
            freq = midi_to_hz(note.midi) * 2.0 ** (note.detune_cents / 1200.0)
            row = tables.row(family, note.bright, freq * drop * (1 + vib), slow)
            inc = freq / sample_rate
        vrate_f = vrate / sample_rate
        dtau_f = dtau * sample_rate
        self.rows.append(np.array([
            note.start, note.gate, max(note.release, GRID), max(note.attack, GRID), max(note.decay, GRID),
            note.sustain, note.velocity, inc, note.phase,
            inc * vib / (2 * math.pi * vrate_f) if vrate_f > 0 else 0.0, vrate_f,
            inc * (drop - 1.0) * dtau_f, max(dtau_f, 1.0), row.base, row.spc,
        ], dtype=np.float64))
        self.lanes.append(lane)

    def prune(self, before: int) -> None:
        keep = [i for i, r in enumerate(self.rows) if r[C_START] + r[C_GATE] + r[C_REL] > before]
        self.rows = [self.rows[i] for i in keep]
        self.lanes = [self.lanes[i] for i in keep]

    def control(self, block_start: int, frames: int) -> np.ndarray:
        """[5, VOICES, frames // GRID] float32: table offset, per-sample advance, envelope start, envelope
        slope, row base (as float, exact below 2**24).

        Onsets and ends lie on the grid, so a note covers whole control segments k0..k1-1 of its lane and
        lanes never hold two notes in one segment. Phase and envelope are evaluated once per segment
        boundary of each note (float64) and differenced into per-segment start values and slopes."""
        nc = frames // GRID
        out = np.zeros((5, VOICES, nc), dtype=np.float32)
        if not self.rows:
            return out
        P = np.stack(self.rows)  # [M, 15]
        ends = P[:, C_START] + P[:, C_GATE] + P[:, C_REL]
        k0 = np.clip((P[:, C_START] - block_start) // GRID, 0, nc).astype(np.int64)
        k1 = np.clip(-((block_start - ends) // GRID), 0, nc).astype(np.int64)
        live = np.nonzero(k1 > k0)[0]
        if live.size == 0:
            return out
        P, k0, k1 = P[live], k0[live], k1[live]
        lanes = np.asarray(self.lanes, dtype=np.int64)[live]
        npts = k1 - k0 + 1  # boundaries of each note's segments
        first = np.cumsum(npts) - npts  # index of each note's first boundary
        note = np.repeat(np.arange(live.size), npts)
        kb = np.arange(note.size) - np.repeat(first, npts) + np.repeat(k0, npts)  # boundary index per point
        start = P[:, C_START][note]
        tau = (block_start + kb * GRID) - start
        ph = P[:, C_PHI][note] + P[:, C_INC][note] * tau
        # each term only where it is not identically zero (the skipped values are exact zeros / ones)
        has_vib = P[:, C_VIB] != 0
        if has_vib.any():
            pts = slice(None) if has_vib.all() else np.nonzero(has_vib[note])[0]
            nv = note[pts]
            # vibrato: the cycle count reduced to [0, 1) in float64, its cosine in float32 (error ~1e-7 of a
            # vibrato depth of at most ~0.15 cycles: far below the float32 phase the lanes read)
            cyc = P[nv, C_VRATE] * tau[pts]
            cyc -= np.floor(cyc)
            cyc *= 2 * np.pi
            ph[pts] += P[nv, C_VIB] * (1.0 - np.cos(cyc.astype(np.float32)))
        if np.any(P[:, C_DROP]):
            drops = np.nonzero(P[:, C_DROP][note])[0]
            nd = note[drops]
            ph[drops] += P[nd, C_DROP] * (1.0 - np.exp(-tau[drops] / P[nd, C_DTAU]))
        gate, att = P[:, C_GATE][note], P[:, C_ATT][note]
        m = np.minimum(tau, gate)
        env = np.empty_like(tau)
        early = m < att
        r = np.nonzero(early)[0]
        env[r] = 0.5 - 0.5 * np.cos(np.pi * np.clip(m[r] / att[r], 0.0, 1.0))
        d = np.nonzero(~early)[0]
        nd = note[d]
        sus = P[nd, C_SUS]
        env[d] = sus + (1.0 - sus) * np.exp(-(m[d] - att[d]) / P[nd, C_DEC])
        env *= P[:, C_VEL][note]
        tail = np.nonzero(tau > gate)[0]  # release: before it the factor is exactly 1
        nt = note[tail]
        rel = np.clip(1.0 - (tau[tail] - gate[tail]) / P[nt, C_REL], 0.0, 1.0)
        env[tail] = env[tail] * rel * rel  # same rounding order as vel * shape * rel * rel
        # segments: every boundary but each note's last
        last = first + npts - 1
        seg = np.ones(note.size, dtype=bool)
        seg[last] = False
        i0 = np.nonzero(seg)[0]
        ni = note[i0]
        spc = P[ni, C_SPC]
        ph0 = ph[i0]
        e0 = env[i0]
        vals = np.empty((5, i0.size))  # one scatter for all five curves
        np.multiply(ph0 - np.floor(ph0), spc, out=vals[0])
        np.multiply(ph[i0 + 1] - ph0, spc / GRID, out=vals[1])
        vals[2] = e0
        np.multiply(env[i0 + 1] - e0, 1.0 / GRID, out=vals[3])
        vals[4] = P[ni, C_BASE]
        # a note's segments are one run k0..k1-1 of its lane: one slice per note
        seg0 = first - np.arange(live.size)  # each note's first segment in vals
        for lane, a, b, v0 in zip(lanes.tolist(), k0.tolist(), k1.tolist(), seg0.tolist()):
            out[:, lane, a:b] = vals[:, v0:v0 + b - a]
        return out


class LaneRenderer:
    """Audio-rate expansion of control curves for all stations at once, at the full rate or 1/factor."""

    def __init__(self, tables: WaveTables, device: torch.device, work_elems: int = 131_072) -> None:
        self.device = device
        pairs = torch.from_numpy(tables.pairs).to(device)
        self.table64 = pairs.view(torch.int64).view(-1)  # (value, slope) read as one 64-bit word
        self.ramps = {f: torch.arange(0, GRID, f, dtype=torch.float32, device=device) for f in (1, SLOW_FACTOR)}
        self.work_elems = work_elems

    def render(self, ctrl: torch.Tensor, mix: torch.Tensor, factor: int = 1) -> torch.Tensor:
        """ctrl [5, S, V, Nc] float32, mix [S, 3, V] -> [S, 3, Nc * GRID // factor] (every factor-th frame)."""
        _, S, V, Nc = ctrl.shape
        ramp = self.ramps[factor]
        G = ramp.numel()
        out = torch.empty(S, 3, Nc * G, device=ctrl.device)
        step = max(1, min(Nc, self.work_elems // max(1, S * V * G)))
        # elementwise only (no GEMM over lanes or segments): a station's samples must not depend on
        # which other stations share the batch
        base_i = ctrl[4].to(torch.int32).unsqueeze(-1)
        for c0 in range(0, Nc, step):
            c1 = min(Nc, c0 + step)
            pos0, adv, e0, de = (ctrl[i, :, :, c0:c1].unsqueeze(-1) for i in range(4))
            pos = torch.addcmul(pos0, adv, ramp)  # [S, V, n, G]
            ip = pos.to(torch.int32)
            frac = pos.sub_(ip)
            ip += base_i[:, :, c0:c1]
            pair = self.table64.index_select(0, ip.view(-1)).view(torch.float32).view(-1, 2)
            wave = torch.addcmul(pair[:, 0], frac.view(-1), pair[:, 1]).view(S, V, -1)
            wave.mul_(torch.addcmul(e0, de, ramp).view(S, V, -1))
            out[:, :, c0 * G:c1 * G] = torch.bmm(mix, wave)
        return out

    def render_sparse(self, ctrl: np.ndarray, mix: np.ndarray, factor: int = 1) -> torch.Tensor:
        """As `render`, but only the sounding segments (envelope start or slope non-zero) are expanded, into
        a zeroed [S, Va, Nc, G] buffer that is then mixed like `render`'s (Va: the most sounding lanes of
        any station, in lane order): for lanes that are silent most of the time (lead, percussion) this
        does about half the work, and the silent segments are exact zeros either way. ctrl [5, S, V, Nc]
        and mix [S, 3, V] are numpy float32."""
        _, S, V, Nc = ctrl.shape
        ramp = self.ramps[factor]
        G = ramp.numel()
        act = (ctrl[2] != 0) | (ctrl[3] != 0)  # [S, V, Nc]
        lane_on = act.any(axis=2)  # [S, V]
        va = max(1, int(lane_on.sum(axis=1).max()))
        rank = np.cumsum(lane_on, axis=1) - 1  # a sounding lane's row among its station's sounding lanes
        mix_c = np.zeros((S, 3, va), dtype=np.float32)
        ls, lv = np.nonzero(lane_on)
        mix_c[ls, :, rank[ls, lv]] = mix[ls, :, lv]
        wave_all = torch.zeros(S * va * Nc, G, device=self.device)
        si, vi, ci = np.nonzero(act)
        n = si.size
        if n:
            sel = torch.from_numpy(np.ascontiguousarray(ctrl[:, si, vi, ci])).to(self.device)  # [5, n]
            rows = torch.from_numpy((si * va + rank[si, vi]) * Nc + ci).to(self.device)
            base_i = sel[4].to(torch.int32).unsqueeze(-1)
            step = max(1, self.work_elems // G)
            for a in range(0, n, step):
                b = min(n, a + step)
                pos0, adv, e0, de = (sel[i, a:b].unsqueeze(-1) for i in range(4))
                pos = torch.addcmul(pos0, adv, ramp)  # [m, G]
                ip = pos.to(torch.int32)
                frac = pos.sub_(ip)
                ip += base_i[a:b]
                pair = self.table64.index_select(0, ip.view(-1)).view(torch.float32).view(-1, 2)
                wave = torch.addcmul(pair[:, 0], frac.view(-1), pair[:, 1]).view(b - a, G)
                wave.mul_(torch.addcmul(e0, de, ramp))
                wave_all.index_copy_(0, rows[a:b], wave)
        return torch.bmm(torch.from_numpy(mix_c).to(self.device), wave_all.view(S, va, Nc * G))
