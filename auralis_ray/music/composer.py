"""The composer: a seeded, endless stream of timed notes (pure Python/numpy).

Time is in frames at `sample_rate`. Every onset and note end lies on a grid of `grid` frames
(~1 ms), which lets the synthesizer compute envelopes at control rate without a seam.
Form: sections of 30-90 s change the harmonic rhythm, register, texture and melody activity;
within a section a Markov chain picks the chords and voice leading keeps the pad smooth.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from auralis_ray.music.params import StationParams
from auralis_ray.music.theory import MODES, chord_pcs, is_diminished, key_pc, scale_pcs, voice_lead

INSTRUMENTS = ("pad", "bass", "lead", "thump", "shaker", "swell")

# Markov transitions between scale degrees (I ii iii IV V vi vii), before mode and variety shaping.
_TRANSITIONS = np.array([
    [0.0, 2.0, 1.0, 4.0, 3.0, 3.0, 0.3],
    [1.0, 0.0, 1.0, 2.0, 4.0, 1.0, 0.3],
    [1.0, 1.0, 0.0, 3.0, 1.0, 4.0, 0.2],
    [3.0, 2.0, 1.0, 0.0, 3.0, 2.0, 0.3],
    [4.0, 1.0, 1.0, 2.0, 0.0, 3.0, 0.3],
    [2.0, 3.0, 1.0, 4.0, 2.0, 0.0, 0.2],
    [3.0, 0.5, 1.0, 0.5, 1.0, 1.0, 0.0],
])


@dataclass(frozen=True)
class Note:
    """One note: onset and durations in frames (multiples of the grid); envelope in frames."""

    start: int
    gate: int
    release: int
    instrument: str
    midi: float
    velocity: float
    attack: int
    decay: int
    sustain: float
    detune_cents: float = 0.0
    phase: float = 0.0  # initial phase in cycles (also the read offset into noise)
    bright: float = 0.5  # 0..1 timbre choice

    @property
    def end(self) -> int:
        return self.start + self.gate + self.release


@dataclass
class Section:
    """One section of the form: where it ends and how it sounds (chords, melody, texture, register)."""

    ends_at: int
    beats_per_chord: int
    seventh_prob: float
    melody_prob: float
    percussion: bool
    register: int  # melody register shift in scale steps
    pad_low: int
    pad_level: float
    density: float


@dataclass(frozen=True)
class SectionStart:
    """Where a section begins (absolute frame), its number since the composer started, and its parameters."""

    frame: int
    number: int
    params: StationParams
    section: Section


SECTION_HISTORY = 16  # section starts kept: minutes of form, more than the composer ever runs ahead


class Composer:
    """Endless, seeded composition for one station."""

    def __init__(self, params: StationParams, seed: int, sample_rate: int = 44100, start_frame: int = 0,
                 grid: int = 63) -> None:
        self.sample_rate = sample_rate
        self.grid = grid
        self.params = params
        self._pending: StationParams | None = None
        entropy = [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, int(start_frame) & 0xFFFFFFFF,
                   int(start_frame) >> 32 & 0xFFFFFFFF]
        self.rng = np.random.default_rng(np.random.SeedSequence(entropy))
        self.cursor = self._q(start_frame)  # composed up to here (next phrase start)
        self.section: Section | None = None
        self.degree = 0
        self.voicing: tuple[int, ...] | None = None
        self.melody_pos = 7 * 2 + 2  # scale steps above the key root two octaves up
        self.swell_free_at = self.cursor
        self.phrase_index = 0
        self._section_starts: deque[SectionStart] = deque(maxlen=SECTION_HISTORY)

    @property
    def section_starts(self) -> tuple[SectionStart, ...]:
        """The latest sections composed, oldest first (the last may lie ahead of what is rendered)."""
        return tuple(self._section_starts)

    # -- control -----------------------------------------------------------------------------------------
    def set_params(self, params: StationParams) -> None:
        """Takes effect at the next phrase."""
        self._pending = params

    def _q(self, frames: float) -> int:
        return int(round(frames / self.grid)) * self.grid

    def _sec(self, seconds: float) -> int:
        return max(self.grid, self._q(seconds * self.sample_rate))

    # -- form --------------------------------------------------------------------------------------------
    def _new_section(self, start: int) -> Section:
        p, rng = self.params, self.rng
        beat = 60.0 / p.bpm
        choices = [b for b in (4, 6, 8, 12, 16) if 3.0 <= b * beat <= 16.0] or [4]
        weights = np.array([1.0 + (1.0 - p.density) * i for i in range(len(choices))])
        bpc = int(rng.choice(choices, p=weights / weights.sum()))
        length = rng.uniform(30.0, 90.0)
        return Section(
            ends_at=start + self._sec(length),
            beats_per_chord=bpc,
            seventh_prob=float(np.clip(0.25 + 0.5 * p.variety + rng.uniform(-0.15, 0.15), 0.0, 0.95)),
            melody_prob=float(np.clip(0.25 + 0.6 * p.density + rng.uniform(-0.25, 0.2), 0.1, 0.95)),
            percussion=bool(p.intensity > 0.2 and rng.random() < 0.35 + 0.65 * p.intensity),
            register=int(rng.choice([-2, 0, 0, 2])),
            pad_low=int(rng.choice([48, 50, 52, 53])),
            pad_level=float(rng.uniform(0.75, 1.0)),
            density=float(np.clip(p.density + rng.uniform(-0.2, 0.2), 0.0, 1.0)),
        )

    def _next_degree(self, scale: tuple[int, ...]) -> int:
        p = self.params
        w = _TRANSITIONS[self.degree].copy()
        for d in range(7):
            if is_diminished(scale, d):
                w[d] *= 0.1
        w = w ** (1.0 / (0.4 + 1.2 * p.variety))
        w[self.degree] = 0.0
        return int(self.rng.choice(7, p=w / w.sum()))

    # -- composition -------------------------------------------------------------------------------------
    def compose_until(self, frame: int) -> list[Note]:
        """Compose whole phrases until the cursor passes `frame`; returns the new notes by onset."""
        notes: list[Note] = []
        while self.cursor <= frame:
            notes.extend(self._phrase())
        notes.sort(key=lambda n: (n.start, INSTRUMENTS.index(n.instrument), n.midi))
        return notes

    def _phrase(self) -> list[Note]:
        if self._pending is not None:
            changed_tonality = (self._pending.key, self._pending.mode) != (self.params.key, self.params.mode)
            self.params, self._pending = self._pending, None
            self.section = None  # a new section starts with the new parameters
            if changed_tonality:
                self.degree = 0
        start = self.cursor
        if self.section is None or start >= self.section.ends_at:
            self.section = self._new_section(start)
            number = self._section_starts[-1].number + 1 if self._section_starts else 1
            self._section_starts.append(SectionStart(start, number, self.params, self.section))
            self.degree = 0 if self.rng.random() < 0.6 else self.degree
            new_section = True
        else:
            self.degree = self._next_degree(scale_pcs(self.params.key, self.params.mode))
            new_section = False
        p, sec, rng = self.params, self.section, self.rng
        scale = scale_pcs(p.key, p.mode)
        beat = 60.0 / p.bpm * self.sample_rate
        dur = self._q(sec.beats_per_chord * beat)
        min_chord = 4 * beat
        notes: list[Note] = []

        # Pad: a full triad or seventh, voice-led, four voices.
        size = 4 if rng.random() < sec.seventh_prob else 3
        pcs = chord_pcs(scale, self.degree, size)
        self.voicing = voice_lead(self.voicing, pcs, sec.pad_low, sec.pad_low + 22, voices=4)
        pad_release = self._sec(min(3.0, 0.85 * min_chord / self.sample_rate))
        pad_attack = self._sec(min(2.2, 0.35 * dur / self.sample_rate))
        for i, m in enumerate(self.voicing):
            stagger = self._q(rng.uniform(0.0, 0.06) * self.sample_rate)
            notes.append(Note(start=start + stagger, gate=dur - stagger, release=pad_release, instrument="pad",
                              midi=float(m), velocity=0.26 * sec.pad_level * rng.uniform(0.85, 1.0),
                              attack=pad_attack, decay=self._sec(2.5), sustain=0.8,
                              detune_cents=float(rng.uniform(-7.0, 7.0)), phase=float(rng.random()),
                              bright=0.3 + 0.5 * p.intensity))

        # Bass: the chord root, sometimes the fifth halfway through.
        root = pcs[0]
        bass_midi = 36 + ((root - 36) % 12)
        bass_release = self._sec(min(1.5, 0.8 * min_chord / self.sample_rate))
        halves = 2 if (sec.density > 0.55 and sec.beats_per_chord >= 8 and rng.random() < 0.5) else 1
        for h in range(halves):
            s = start + h * self._q(dur / halves)
            g = self._q(dur / halves) - (self.grid if halves > 1 and h == 0 else 0)
            m = bass_midi if h == 0 else 36 + ((pcs[2] - 36) % 12)
            notes.append(Note(start=s, gate=g, release=bass_release if h == halves - 1 else self._sec(0.3),
                              instrument="bass", midi=float(m), velocity=0.34 * rng.uniform(0.9, 1.0),
                              attack=self._sec(0.25), decay=self._sec(2.0), sustain=0.75,
                              phase=float(rng.random())))

        # Melody.
        if rng.random() < sec.melody_prob:
            notes.extend(self._melody(start, dur, beat, scale, pcs))

        # Percussion, soft, only when the intensity asks for it.
        if sec.percussion:
            notes.extend(self._percussion(start, dur, beat, scale))

        # Noise swell.
        if start >= self.swell_free_at and (new_section or rng.random() < 0.1 + 0.4 * p.intensity):
            g = self._q(dur * rng.uniform(0.4, 0.7))
            rel = self._sec(min(3.0, 0.8 * dur / self.sample_rate))
            notes.append(Note(start=start, gate=g, release=rel, instrument="swell", midi=0.0,
                              velocity=(0.05 + 0.12 * p.intensity) * rng.uniform(0.7, 1.0),
                              attack=max(self.grid, self._q(g * 0.8)), decay=self._sec(2.0), sustain=0.9,
                              phase=float(rng.random()), bright=float(rng.uniform(0.2, 0.6 + 0.4 * p.intensity))))
            self.swell_free_at = start + g + rel + self.grid

        self.cursor = start + dur
        self.phrase_index += 1
        return notes

    def _melody(self, start: int, dur: int, beat: float, scale: tuple[int, ...], chord: tuple[int, ...]) -> list[Note]:
        p, sec, rng = self.params, self.section, self.rng
        root = key_pc(p.key)
        steps = MODES[p.mode]
        lo, hi = 7 * 2 + sec.register, 7 * 4 + sec.register  # scale-step range (two octaves)

        def to_midi(pos: int) -> int:
            return 36 + root + 12 * (pos // 7) + steps[pos % 7]

        durations = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
        weights = np.array([0.3 * sec.density, 0.6 + sec.density, 0.6, 1.0, 0.8 * (1 - sec.density) + 0.2,
                            0.6 * (1 - sec.density) + 0.1])
        weights = weights / weights.sum()
        total_beats = dur / beat
        t = float(rng.choice([0.0, 0.5, 1.0, 2.0]))
        arc_peak = rng.uniform(0.3, 0.7)
        notes: list[Note] = []
        lead_lanes_free = [start] * 3
        while t < total_beats - 0.5:
            length = float(rng.choice(durations, p=weights))
            length = min(length, total_beats - t)
            if rng.random() < 0.22 * (1.2 - sec.density):  # rest
                t += length
                continue
            # contour: drift towards an arch, steps mostly by one
            progress = t / total_beats
            target = lo + 4 + int((hi - lo - 6) * (1 - abs(progress - arc_peak)))
            step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
            step += int(np.sign(target - self.melody_pos)) if rng.random() < 0.4 else 0
            pos = int(np.clip(self.melody_pos + step, lo, hi))
            if abs(t - round(t)) < 1e-9 and int(round(t)) % 2 == 0:  # strong beat: land on a chord tone
                candidates = [q for q in range(lo, hi + 1) if (to_midi(q) % 12) in chord]
                pos = min(candidates, key=lambda q: (abs(q - pos), q))
            self.melody_pos = pos
            onset = start + self._q(t * beat)
            gate = max(self.grid, self._q(0.9 * length * beat))
            release = self._sec(min(1.8, 1.6 * length * beat / self.sample_rate))
            free = [i for i, f in enumerate(lead_lanes_free) if f <= onset]
            if free:
                lead_lanes_free[free[0]] = onset + gate + release
                accent = 1.0 if abs(t - round(t)) < 1e-9 else 0.85
                notes.append(Note(start=onset, gate=gate, release=release, instrument="lead",
                                  midi=float(to_midi(pos)), velocity=0.2 * accent * rng.uniform(0.75, 1.0),
                                  attack=self._sec(0.012 + 0.05 * (1 - p.intensity)), decay=self._sec(1.2),
                                  sustain=0.4, detune_cents=float(rng.uniform(-3, 3)), phase=float(rng.random()),
                                  bright=float(np.clip(0.3 + 0.6 * p.intensity + rng.uniform(-0.1, 0.1), 0, 1))))
            t += length
        return notes

    def _percussion(self, start: int, dur: int, beat: float, scale: tuple[int, ...]) -> list[Note]:
        p, sec, rng = self.params, self.section, self.rng
        notes: list[Note] = []
        root = key_pc(p.key)
        thump_midi = 28 + ((root - 28) % 12)
        n_beats = int(round(dur / beat))
        for b in range(n_beats):
            onset = start + self._q(b * beat)
            if onset + self._sec(0.3) > start + dur + self._sec(0.3):
                break
            strong = b % 4 == 0
            if strong or (b % 2 == 0 and rng.random() < p.intensity) or rng.random() < 0.15 * p.intensity:
                notes.append(Note(start=onset, gate=self._sec(0.1), release=self._sec(0.15), instrument="thump",
                                  midi=float(thump_midi), velocity=(0.25 + 0.35 * p.intensity) * (1.0 if strong else 0.7),
                                  attack=self._sec(0.003), decay=self._sec(0.12), sustain=0.0, phase=0.0))
            for half in (0.0, 0.5):
                if rng.random() < 0.15 + 0.6 * p.intensity * sec.density:
                    s = start + self._q((b + half) * beat)
                    notes.append(Note(start=s, gate=self._sec(0.03), release=self._sec(0.07), instrument="shaker",
                                      midi=0.0, velocity=(0.05 + 0.08 * p.intensity) * (0.6 if half == 0.0 else 1.0) *
                                      rng.uniform(0.6, 1.0), attack=self._sec(0.004), decay=self._sec(0.05),
                                      sustain=0.2, phase=float(rng.random()), bright=0.7))
        return notes
