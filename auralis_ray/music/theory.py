"""Keys, modes, diatonic chords and voice leading."""

from __future__ import annotations

import itertools

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"": 0, "#": 1, "b": -1}

MODES: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
}
MODE_ALIASES = {"major": "ionian", "minor": "aeolian"}
KEY_NAMES = tuple(
    letter + acc for letter in "CDEFGAB" for acc in ("", "#", "b")
    if not (letter + acc in ("E#", "B#", "Fb", "Cb"))
)


def normalize_key(name: str) -> str:
    """'c#' -> 'C#', 'bb' -> 'Bb'; an unknown key raises ValueError."""
    text = str(name).strip()
    if 1 <= len(text) <= 2:
        letter, acc = text[0].upper(), text[1:].replace("♯", "#").replace("♭", "b")
        acc = acc.lower() if acc in ("B",) else acc
        if letter in _LETTER_PC and acc in _ACCIDENTAL and letter + acc in KEY_NAMES:
            return letter + acc
    raise ValueError(f"unknown key {name!r}; use a note name such as C, F#, Bb")


def normalize_mode(name: str) -> str:
    text = str(name).strip().lower()
    text = MODE_ALIASES.get(text, text)
    if text not in MODES:
        raise ValueError(f"unknown mode {name!r}; choose one of {sorted(MODES)} (or major/minor)")
    return text


def key_pc(key: str) -> int:
    key = normalize_key(key)
    return (_LETTER_PC[key[0]] + _ACCIDENTAL[key[1:]]) % 12


def scale_pcs(key: str, mode: str) -> tuple[int, ...]:
    root = key_pc(key)
    return tuple((root + i) % 12 for i in MODES[normalize_mode(mode)])


def chord_pcs(scale: tuple[int, ...], degree: int, size: int) -> tuple[int, ...]:
    """Diatonic tertian chord on `degree` (0-6): root, third, fifth (, seventh)."""
    return tuple(scale[(degree + 2 * i) % 7] for i in range(size))


def is_diminished(scale: tuple[int, ...], degree: int) -> bool:
    root, _, fifth = chord_pcs(scale, degree, 3)
    return (fifth - root) % 12 == 6


def voice_lead(previous: tuple[int, ...] | None, pcs: tuple[int, ...], low: int, high: int,
               voices: int = 4) -> tuple[int, ...]:
    """The voicing of `pcs` (every pitch class present, `voices` notes in [low, high]) that moves least
    from `previous` (sum of semitone motion between sorted voices); ties go to the lower voicing."""
    options = [[m for m in range(low, high + 1) if m % 12 == pc] for pc in pcs]
    extra = voices - len(pcs)
    best: tuple[float, tuple[int, ...]] | None = None
    doubled_choices = list(itertools.combinations_with_replacement(range(len(pcs)), extra)) if extra > 0 else [()]
    for doubled in doubled_choices:
        pools = options + [options[i] for i in doubled]
        for combo in itertools.product(*pools):
            notes = tuple(sorted(combo))
            if len(set(notes)) != len(notes):
                continue
            if notes[-1] - notes[0] > 19 or notes[-1] - notes[0] < 7:
                continue
            if min(b - a for a, b in zip(notes, notes[1:])) < 2 and voices > 3:
                continue  # no semitone clusters in the pad
            if previous is None:
                centre = (low + high) / 2
                cost = abs(sum(notes) / len(notes) - centre)
            else:
                cost = float(sum(abs(a - b) for a, b in zip(notes, previous)))
            cost += 0.01 * (notes[-1] - notes[0])  # prefer closer spacing on ties
            if best is None or cost < best[0] - 1e-9:
                best = (cost, notes)
    if best is None:  # range too narrow for the constraints: stack close position
        base = low + ((pcs[0] - low) % 12)
        return tuple(sorted(base + ((pc - pcs[0]) % 12) for pc in pcs))
    return best[1]


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
