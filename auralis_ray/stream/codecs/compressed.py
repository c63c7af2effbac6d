"""One station's compressed streams: its Opus and MP3 encoders run along its timeline, and every
compressed form of a chunk is built once, for every listener.

A `CompressedStream` starts at one chunk and continues chunk by chunk. Per chunk it builds the
`format=opus` WebSocket frame body, the chunk's Ogg pages (after the stream's header pages, which
a new HTTP listener receives first) and the chunk's MP3 frames. A stream cannot skip a chunk or go
back: where a station's timeline jumps (a hole, a restarted station actor), a new stream starts,
with new encoders and a new Ogg serial number, so an HTTP listener sees a chained Ogg stream.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..protocol import SAMPLE_RATE
from .encoders import (DEFAULT_BITRATE, DEFAULT_MP3_QUALITY, DEFAULT_OPUS_COMPLEXITY, Mp3Encoder, OpusEncoder,
                       TimelineGap)
from .ogg import OggOpusStream
from .opus_frame import encode_opus_frame

_SERIAL_AT = struct.Struct("<I")
SERIAL_OFFSET = 14  # where an Ogg page header holds the stream's serial number


@dataclass(frozen=True)
class CodecSettings:
    """Bitrates (bit/s) and effort of a station's encoders; the station's settings carry them."""

    opus_bitrate: int = DEFAULT_BITRATE
    opus_complexity: int = DEFAULT_OPUS_COMPLEXITY
    mp3_bitrate: int = DEFAULT_BITRATE
    mp3_quality: int = DEFAULT_MP3_QUALITY


@dataclass(frozen=True)
class CompressedForms:
    """One chunk's compressed forms, shared by every listener of the station.

    - `opus_frame`: the body of the chunk's `format=opus` WebSocket frame (the PCM binary frame's
      header, then each Opus packet with a 2-byte big-endian length).
    - `ogg_header`: the header pages (OpusHead, OpusTags) of the Ogg stream the chunk belongs to: the
      same bytes for every chunk of one stream; a new HTTP listener receives them first, and a
      listener whose next chunk brings other header pages receives those before its pages.
    - `ogg_pages`: the chunk's Opus packets as whole Ogg pages (empty when it completes no packet).
    - `mp3`: the chunk's MP3 frames, whole (a listener that starts with them starts on a frame).
    """

    opus_frame: bytes
    ogg_header: bytes
    ogg_pages: bytes
    mp3: bytes

    @property
    def ogg_serial(self) -> int:
        """The serial number of the chunk's Ogg stream (it changes where a new stream starts)."""
        return _SERIAL_AT.unpack_from(self.ogg_header, SERIAL_OFFSET)[0]


def ogg_serial(station: str, first_chunk_id: int) -> int:
    """The serial number of the station's compressed stream that starts at `first_chunk_id`: streams
    that start at other chunks get other numbers, and the same start gets the same number."""
    return zlib.crc32(f"{station}/{first_chunk_id}".encode())


class CompressedStream:
    """A station's Opus (with its Ogg pages and WebSocket frames) and MP3 encoders from one chunk on."""

    def __init__(self, station: str, first_chunk_id: int, settings: CodecSettings):
        self.first_chunk_id = first_chunk_id
        self.next_chunk_id = first_chunk_id
        self.opus = OpusEncoder(settings.opus_bitrate, settings.opus_complexity)
        self.mp3 = Mp3Encoder(settings.mp3_bitrate, settings.mp3_quality)
        self.ogg = OggOpusStream(ogg_serial(station, first_chunk_id), self.opus.pre_skip, SAMPLE_RATE,
                                 comments=(f"TITLE={station}",))

    def continues_with(self, chunk_id: int) -> bool:
        return chunk_id == self.next_chunk_id

    def encode(self, chunk_id: int, timestamp: float, pcm: bytes | memoryview) -> CompressedForms:
        """The next chunk's compressed forms (17,640 bytes of interleaved int16 stereo PCM)."""
        if not self.continues_with(chunk_id):
            raise TimelineGap(f"the compressed stream continues with chunk {self.next_chunk_id}, got chunk {chunk_id}")
        opus = self.opus.encode(chunk_id, pcm)
        mp3 = self.mp3.encode(chunk_id, pcm)
        self.next_chunk_id = chunk_id + 1
        return CompressedForms(opus_frame=encode_opus_frame(chunk_id, timestamp, opus.packets),
                               ogg_header=self.ogg.header_pages, ogg_pages=self.ogg.chunk_pages(opus),
                               mp3=mp3.payload)
