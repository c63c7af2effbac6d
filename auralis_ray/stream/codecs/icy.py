"""ICY (SHOUTcast) metadata in an MP3 stream, for clients that send `Icy-MetaData: 1`.

After every `metaint` bytes of audio the server sends one metadata block: a length byte L, then L * 16
bytes of text, `StreamTitle='...';` padded with NUL bytes. L = 0 (a single zero byte) means "no
change". The audio bytes are shared by every listener; where the blocks fall depends on how many audio
bytes a listener has received, so each listener has its own `IcyInterleaver`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

BLOCK_UNIT = 16
MAX_BLOCK_UNITS = 255
NO_CHANGE = b"\x00"
_TITLE_FIELD = re.compile(rb"StreamTitle='(.*?)';", re.DOTALL)


@functools.lru_cache(maxsize=64)
def icy_metadata_block(title: str) -> bytes:
    """The block announcing `title`: length byte, `StreamTitle='title';`, NUL padding to 16 bytes.

    The title is cut (on a character boundary) to fit the largest block; the format has no escaping, so a
    title holding `';` ends the field early.
    """
    room = MAX_BLOCK_UNITS * BLOCK_UNIT - len(b"StreamTitle='';")
    encoded = title.encode()[:room].decode(errors="ignore").encode()
    text = b"StreamTitle='" + encoded + b"';"
    units = -(-len(text) // BLOCK_UNIT)
    return bytes([units]) + text.ljust(units * BLOCK_UNIT, b"\x00")


class IcyInterleaver:
    """One listener's ICY framing: the shared audio with a metadata block after every `metaint` audio bytes.

    The title is sent in the first block and whenever it changes; other blocks say "no change".
    """

    def __init__(self, metaint: int):
        if metaint <= 0:
            raise ValueError(f"metaint must be positive, got {metaint}")
        self.metaint = metaint
        self.audio_until_block = metaint
        self.sent_title: str | None = None

    def interleave(self, audio: bytes, title: str) -> list[bytes | memoryview]:
        """What to send for `audio` (zero-copy views of it between the metadata blocks)."""
        pieces: list[bytes | memoryview] = []
        rest = memoryview(audio)
        while len(rest) >= self.audio_until_block:
            pieces.append(rest[:self.audio_until_block])
            rest = rest[self.audio_until_block:]
            pieces.append(self._block(title))
            self.audio_until_block = self.metaint
        if len(rest):
            pieces.append(rest)
            self.audio_until_block -= len(rest)
        return pieces

    def _block(self, title: str) -> bytes:
        if title == self.sent_title:
            return NO_CHANGE
        self.sent_title = title
        return icy_metadata_block(title)


@dataclass
class IcyDemuxer:
    """A client's side: splits a received ICY stream into audio and titles, fed in any pieces.

    `feed` returns the audio bytes in the piece, and the titles announced, each with the number of audio
    bytes received before its block.
    """

    metaint: int
    audio_until_block: int = field(init=False)
    audio_received: int = field(default=0, init=False)
    _pending: bytearray = field(default_factory=bytearray, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.metaint <= 0:
            raise ValueError(f"metaint must be positive, got {self.metaint}")
        self.audio_until_block = self.metaint

    def feed(self, data: bytes) -> tuple[bytes, list[tuple[int, str]]]:
        self._pending += data
        audio = bytearray()
        titles: list[tuple[int, str]] = []
        while self._pending:
            if self.audio_until_block:
                take = bytes(self._pending[:self.audio_until_block])
                del self._pending[:len(take)]
                audio += take
                self.audio_until_block -= len(take)
                self.audio_received += len(take)
                continue
            size = 1 + self._pending[0] * BLOCK_UNIT
            if len(self._pending) < size:
                break
            block = bytes(self._pending[1:size])
            del self._pending[:size]
            self.audio_until_block = self.metaint
            if block:
                match = _TITLE_FIELD.search(block)
                if match is None:
                    raise ValueError(f"a metadata block without StreamTitle: {block[:64]!r}")
                titles.append((self.audio_received, match.group(1).decode(errors="replace")))
        return bytes(audio), titles
