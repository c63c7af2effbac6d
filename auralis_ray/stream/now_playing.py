"""NowPlayingTimeline: what a station plays, on an ingress replica, chunk by published chunk.

Each fetch reply of a station actor says which sections sound over the chunks it hands out (the
station's now-playing messages, each with the `since_chunk_id` it starts at). The replica keeps them,
and as it publishes chunks the section sounding at the newest one becomes current; a change is
what the replica announces to its listeners (`now_playing` messages, the ICY StreamTitle).
"""

from __future__ import annotations

from typing import Any, Iterable

Section = dict[str, Any]  # a station's now-playing message (`StationCore.now_playing_message`)


def _since(section: Section) -> int:
    return section["since_chunk_id"]


class NowPlayingTimeline:
    """The sections a station announced, oldest first, and the one sounding at the newest published chunk."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.current: Section | None = None

    def merge(self, announced: Iterable[Section]) -> None:
        """Take a fetch reply's sections: from the first one's start on, they replace what was known
        (a restarted station's timeline may play other sections there)."""
        announced = sorted(announced, key=_since)
        if not announced:
            return
        first = _since(announced[0])
        self.sections = [s for s in self.sections if _since(s) < first] + announced

    def playing_at(self, chunk_id: int) -> Section | None:
        """The section sounding at `chunk_id` (None before the first one known)."""
        playing = None
        for section in self.sections:
            if _since(section) > chunk_id:
                break
            playing = section
        return playing

    def advance(self, chunk_id: int) -> Section | None:
        """`chunk_id` is published: the section sounding there becomes current. Returns it when that
        changes what is current, else None. Sections before it are forgotten."""
        playing = self.playing_at(chunk_id)
        if playing is None:
            return None
        while self.sections[0] is not playing:
            self.sections.pop(0)
        if playing == self.current:
            return None
        self.current = playing
        return playing
