"""How many seconds of audio an HTTP stream's bytes hold, without decoding them.

Pure: a clock is fed the body's bytes as they arrive and returns the seconds of audio they complete.
Written from the formats' specifications, not from the server's encoders, so that a server-side
mistake in the framing shows here.

- MP3 (`Mp3Clock`): a constant-bitrate stream; its first frame header (ISO 11172-3) gives the bitrate,
  and its bytes are timed by it. The stream must start on that header (a new Auralis listener starts
  on a frame boundary); with `resync` the bytes before the first header are skipped, as a player
  does with a server whose burst starts mid-frame (Icecast's).
- Ogg Opus (`OggOpusClock`): the pages (RFC 3533) are walked, and each Opus packet that starts on one
  adds the duration its TOC byte names (RFC 6716 section 3.1); the two header packets that begin each
  logical stream (OpusHead, OpusTags, RFC 7845) add none. The stream must start with an OpusHead page.
"""

from __future__ import annotations

import struct

# MPEG-1 Layer III bitrates in kbit/s by the header's bitrate index (0: free format, 15: invalid)
MPEG1_LAYER3_KBPS = (None, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, None)
MP3_HEADER_BYTES = 4

OPUS_RATE = 48_000  # Opus durations count 48 kHz samples whatever the input rate
OGG_CAPTURE = b"OggS"
OGG_PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture .. page_segments: 27 bytes
OGG_CONTINUED = 0x01
OGG_FIRST = 0x02  # beginning of a logical stream
OPUS_HEADER_PACKETS = 2  # OpusHead, OpusTags


class StreamFormatError(ValueError):
    """Bytes that are not the stream they claim to be (no frame sync, no Ogg page, no OpusHead)."""


def mp3_bitrate(header: bytes) -> int:
    """The bitrate (bit/s) of the MPEG-1 Layer III frame whose 4-byte header starts `header`."""
    if len(header) < MP3_HEADER_BYTES or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        raise StreamFormatError("the MP3 stream does not start on a frame header")
    version, layer = (header[1] >> 3) & 0b11, (header[1] >> 1) & 0b11
    if (version, layer) != (0b11, 0b01):
        raise StreamFormatError("the MP3 stream is not MPEG-1 Layer III")
    kbps = MPEG1_LAYER3_KBPS[header[2] >> 4]
    if kbps is None:
        raise StreamFormatError("the MP3 stream's first frame has no fixed bitrate")
    return kbps * 1000


MPEG1_SAMPLE_RATES = (44_100, 48_000, 32_000, None)


def mp3_frame_length(header: bytes) -> int | None:
    """The length in bytes of the MPEG-1 Layer III frame whose header starts `header`; None where it
    is not such a header."""
    try:
        bitrate = mp3_bitrate(bytes(header))
    except StreamFormatError:
        return None
    rate = MPEG1_SAMPLE_RATES[(header[2] >> 2) & 0b11]
    return None if rate is None else 144 * bitrate // rate + ((header[2] >> 1) & 1)


class Mp3Clock:
    """Seconds of audio in a constant-bitrate MP3 stream's bytes, at its first frame's bitrate.
    `resync`: skip the bytes before the first frame header instead of refusing them."""

    def __init__(self, resync: bool = False) -> None:
        self.bitrate: int | None = None
        self.resync = resync
        self.skipped = 0  # bytes before the first frame header (resync only)
        self._start = bytearray()  # the first bytes, until the first frame header is whole

    def feed(self, data: bytes) -> float:
        if self.bitrate is None:
            self._start += data
            if self.resync and not self._skip_to_header():
                return 0.0
            if len(self._start) < MP3_HEADER_BYTES:
                return 0.0
            self.bitrate = mp3_bitrate(self._start)
            size = len(self._start)
            self._start = bytearray()
            return size * 8 / self.bitrate
        return len(data) * 8 / self.bitrate

    def _skip_to_header(self) -> bool:
        """Drop the bytes before the first frame header that the next frame's header confirms (a
        0xFF inside a frame's data can look like a header). True once one is confirmed; a candidate
        whose next frame has not arrived yet is kept for the next read."""
        start = self._start
        at, confirmed = start.find(0xFF), False
        while at >= 0:
            length = mp3_frame_length(start[at:at + MP3_HEADER_BYTES])
            if length is None:
                if len(start) - at < MP3_HEADER_BYTES:
                    break  # a header may be split across reads
            else:
                after = start[at + length:at + length + MP3_HEADER_BYTES]
                if len(after) < MP3_HEADER_BYTES:
                    break  # the next frame has not arrived yet
                if mp3_frame_length(after) is not None:
                    confirmed = True
                    break
            at = start.find(0xFF, at + 1)
        drop = len(start) if at < 0 else at
        self.skipped += drop
        del start[:drop]
        return confirmed


def opus_packet_samples(toc: int, frame_count_byte: int | None) -> int:
    """48 kHz samples in an Opus packet, from its TOC byte (and, for code 3, the frame count byte after it)."""
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        frame = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        return frame
    if code < 3:
        return 2 * frame
    if frame_count_byte is None:
        raise StreamFormatError("an Opus code 3 packet without its frame count")
    return (frame_count_byte & 0x3F) * frame


class OggOpusClock:
    """Seconds of audio in an Ogg Opus stream's bytes, counted on each whole page as it arrives."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers_left = 0  # header packets still to come in the current logical stream
        self.pages = 0

    def feed(self, data: bytes) -> float:
        buffer = self._buffer
        buffer += data
        samples = 0
        offset = 0
        while len(buffer) - offset >= OGG_PAGE_HEADER.size:
            if buffer[offset:offset + 4] != OGG_CAPTURE:
                raise StreamFormatError(f"no Ogg page where page {self.pages + 1} should start")
            flags, count = buffer[offset + 5], buffer[offset + 26]
            body = offset + OGG_PAGE_HEADER.size + count
            if len(buffer) < body:
                break
            segments = buffer[offset + OGG_PAGE_HEADER.size:body]
            end = body + sum(segments)
            if len(buffer) < end:
                break
            samples += self._page(flags, segments, buffer, body, end)
            offset = end
        del buffer[:offset]
        return samples / OPUS_RATE

    def _page(self, flags: int, segments: bytearray, buffer: bytearray, body: int, end: int) -> int:
        """The samples of the packets that start on the page whose body is buffer[body:end]."""
        if flags & OGG_FIRST:
            if buffer[body:body + 8] != b"OpusHead":
                raise StreamFormatError("a logical stream does not begin with an OpusHead page")
            self._headers_left = OPUS_HEADER_PACKETS
        elif self.pages == 0:
            raise StreamFormatError("the Ogg stream does not start with its OpusHead page")
        self.pages += 1
        samples = 0
        starts_packet = not flags & OGG_CONTINUED
        position = body
        for lace in segments:
            if starts_packet and lace:
                if self._headers_left:
                    self._headers_left -= 1
                else:
                    count_byte = buffer[position + 1] if position + 1 < end else None
                    samples += opus_packet_samples(buffer[position], count_byte)
            starts_packet = lace < 255
            position += lace
        return samples
