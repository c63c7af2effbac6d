"""What a station is playing: preset, tonality, tempo and the current section, and since which chunk.

The composer runs ahead of what listeners hear, so "now" is looked up by the frame being rendered or
published among the section starts the composer keeps (`Composer.section_starts`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from auralis_ray.music.composer import Composer, Section, SectionStart

PULSE, BLOOM, STILL, DRIFT = "pulse", "bloom", "still", "drift"
DENSE_SECTION = 0.6  # a section at least this dense blooms
SPARSE_SECTION = 0.3  # a section at most this dense is still


def section_character(section: Section) -> str:
    """A one-word name for how a section sounds: with percussion, dense, sparse, or in between."""
    if section.percussion:
        return PULSE
    if section.density >= DENSE_SECTION:
        return BLOOM
    if section.density <= SPARSE_SECTION:
        return STILL
    return DRIFT


@dataclass(frozen=True)
class NowPlaying:
    """The section a station plays, and the chunk from which it sounds."""

    preset: str
    key: str
    mode: str
    bpm: float
    section: str
    section_number: int
    since_chunk_id: int

    @classmethod
    def from_section_start(cls, start: SectionStart, frames_per_chunk: int) -> "NowPlaying":
        params = start.params
        return cls(preset=params.preset, key=params.key, mode=params.mode, bpm=params.bpm,
                   section=section_character(start.section), section_number=start.number,
                   since_chunk_id=start.frame // frames_per_chunk)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> "NowPlaying":
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def same_section(self, other: "NowPlaying") -> bool:
        """Whether both describe the same section, wherever each says it starts."""
        return replace(self, since_chunk_id=other.since_chunk_id) == other

    def starting_at(self, chunk_id: int) -> "NowPlaying":
        """The same section, sounding from `chunk_id`."""
        return replace(self, since_chunk_id=chunk_id)


def now_playing_at(composer: Composer, frame: int, frames_per_chunk: int) -> NowPlaying | None:
    """What sounds at `frame`: None when the composer has not composed that far, or no longer remembers it."""
    starts = composer.section_starts
    if not starts or frame < starts[0].frame or frame >= composer.cursor:
        return None
    current = max((start for start in starts if start.frame <= frame), key=lambda start: start.frame)
    return NowPlaying.from_section_start(current, frames_per_chunk)


def now_playing_changes(composer: Composer, from_frame: int, to_frame: int, frames_per_chunk: int) -> list[NowPlaying]:
    """The sections that begin in [from_frame, to_frame), in order (for example, within one rendered block)."""
    return [NowPlaying.from_section_start(start, frames_per_chunk)
            for start in composer.section_starts if from_frame <= start.frame < to_frame]


def sections_over(composer: Composer, from_frame: int, to_frame: int, frames_per_chunk: int) -> list[NowPlaying]:
    """What sounds over [from_frame, to_frame): the section sounding at from_frame (when the composer
    remembers it), then each section that begins after it, in order. Call it once the composer has
    composed past to_frame (after rendering that stretch)."""
    current = now_playing_at(composer, from_frame, frames_per_chunk)
    return ([current] if current else []) + now_playing_changes(composer, from_frame + 1, to_frame, frames_per_chunk)


def stream_title(now: NowPlaying, station: str | None = None) -> str:
    """One line for players (the ICY StreamTitle): 'night - Sleep: A aeolian, 44 bpm, still (section 3)'."""
    title = (f"{now.preset.capitalize()}: {now.key} {now.mode}, {now.bpm:g} bpm, "
             f"{now.section} (section {now.section_number})")
    return f"{station} - {title}" if station else title
