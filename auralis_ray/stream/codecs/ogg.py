"""Ogg framing of one live Opus stream (RFC 3533 pages, RFC 7845 Opus mapping).

`OggOpusStream` builds the two header pages once (OpusHead, OpusTags) and then the pages of each
chunk once; every HTTP listener receives the same bytes: the header pages first, then the chunk pages
from where it joins, as Icecast serves Ogg. A listener who joins mid-stream therefore sees a jump in
page sequence numbers and a first granule position above zero after the headers; decoders take that as
a stream that started before they tuned in.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .encoders import OPUS_HEAD, CompressedChunk

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture pattern .. page_segments (27 bytes)
_CAPTURE = b"OggS"
FLAG_CONTINUED = 0x01
FLAG_FIRST = 0x02  # beginning of stream
MAX_SEGMENTS = 255
NO_GRANULE = -1  # a page on which no packet ends

# The Ogg CRC is CRC-32 with polynomial 0x04C11DB7 fed most significant bit first, initial value 0 and no
# final inversion. zlib computes the bit-reflected form of the same polynomial, so the Ogg CRC of some
# bytes is the reflection of zlib's CRC of the reflected bytes (with zlib's own inversions undone).
_REFLECTED_BYTES = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_crc(data: bytes) -> int:
    """The CRC an Ogg page header carries, computed over the page with its CRC field zeroed."""
    reflected = zlib.crc32(data.translate(_REFLECTED_BYTES), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def ogg_page(serial: int, sequence: int, granule: int, segments: Sequence[int], body: bytes, flags: int = 0) -> bytes:
    """One Ogg page: header with lacing values `segments` (each 0-255), then `body`."""
    if len(segments) > MAX_SEGMENTS:
        raise ValueError(f"an Ogg page holds at most {MAX_SEGMENTS} segments, got {len(segments)}")
    header = _PAGE_HEADER.pack(_CAPTURE, 0, flags, granule, serial, sequence, 0, len(segments)) + bytes(segments)
    page = bytearray(header + body)
    struct.pack_into("<I", page, 22, ogg_crc(page))
    return bytes(page)


def lacing(size: int) -> list[int]:
    """The lacing values of one packet: 255 for each full 255 bytes, then the remainder (0 included)."""
    return [255] * (size // 255) + [size % 255]


def packet_pages(serial: int, first_sequence: int, packets: Sequence[bytes], granule_ends: Sequence[int],
                 flags: int = 0) -> list[bytes]:
    """The packets on as few pages as they fit (a packet may continue on the next page); each page carries
    the granule position of the last packet that ends on it."""
    pages: list[bytes] = []
    segments: list[int] = []
    body = bytearray()
    granule = NO_GRANULE
    continued = False  # the page's first segment continues a packet from the page before
    for packet, granule_end in zip(packets, granule_ends, strict=True):
        laces = lacing(len(packet))
        offset = 0
        for index, lace in enumerate(laces):
            segments.append(lace)
            body += packet[offset:offset + lace]
            offset += lace
            ends_packet = index == len(laces) - 1
            if ends_packet:
                granule = granule_end
            if len(segments) == MAX_SEGMENTS:
                pages.append(ogg_page(serial, first_sequence + len(pages), granule, segments, bytes(body),
                                      flags | (FLAG_CONTINUED if continued else 0)))
                flags &= ~FLAG_FIRST
                continued = not ends_packet
                segments, body, granule = [], bytearray(), NO_GRANULE
    if segments:
        pages.append(ogg_page(serial, first_sequence + len(pages), granule, segments, bytes(body),
                              flags | (FLAG_CONTINUED if continued else 0)))
    return pages


def opus_head(pre_skip: int, input_sample_rate: int, channels: int = 2, output_gain: int = 0) -> bytes:
    """The identification header (RFC 7845 section 5.1), version 1, channel mapping family 0."""
    return OPUS_HEAD.pack(b"OpusHead", 1, channels, pre_skip, input_sample_rate, output_gain, 0)


def opus_tags(vendor: str, comments: Sequence[str] = ()) -> bytes:
    """The comment header (RFC 7845 section 5.2): vendor string and `NAME=value` comments."""
    def field(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<I", len(data)) + data

    return b"OpusTags" + field(vendor) + struct.pack("<I", len(comments)) + b"".join(map(field, comments))


class OggOpusStream:
    """One station's Ogg Opus stream: header pages once, then each chunk's pages, shared by every listener.

    Pages are numbered in the order they are built, so build them along the timeline (chunk_id order).
    The granule position of a page is the 48 kHz sample count at the end of its last packet, pre-skip
    included, as RFC 7845 defines it.
    """

    def __init__(self, serial: int, pre_skip: int, input_sample_rate: int, channels: int = 2,
                 vendor: str = "auralis", comments: Sequence[str] = ()):
        self.serial = serial & 0xFFFFFFFF
        self.pre_skip = pre_skip
        # RFC 7845: OpusHead alone on the first page (granule 0), OpusTags on the pages after it
        head = packet_pages(self.serial, 0, [opus_head(pre_skip, input_sample_rate, channels)], [0], FLAG_FIRST)
        tags = packet_pages(self.serial, len(head), [opus_tags(vendor, comments)], [0])
        self.header_pages = b"".join(head + tags)
        self.next_sequence = len(head) + len(tags)

    def chunk_pages(self, chunk: CompressedChunk) -> bytes:
        """The chunk's Opus packets as whole Ogg pages (empty when the chunk completes no packet)."""
        if not chunk.packets:
            return b""
        ends, end = [], chunk.samples_end - sum(chunk.packet_samples)
        for samples in chunk.packet_samples:
            end += samples
            ends.append(end)
        pages = packet_pages(self.serial, self.next_sequence, chunk.packets, ends)
        self.next_sequence += len(pages)
        return b"".join(pages)


@dataclass(frozen=True)
class OggPage:
    """A parsed Ogg page (for tests and the load generator)."""

    flags: int
    granule: int
    serial: int
    sequence: int
    crc: int
    segments: tuple[int, ...]
    body: bytes

    @property
    def crc_ok(self) -> bool:
        header = _PAGE_HEADER.pack(_CAPTURE, 0, self.flags, self.granule, self.serial, self.sequence, 0,
                                   len(self.segments))
        return ogg_crc(header + bytes(self.segments) + self.body) == self.crc


def parse_pages(data: bytes) -> tuple[list[OggPage], bytes]:
    """Whole pages from the start of `data`, and the bytes left after the last whole page."""
    pages: list[OggPage] = []
    offset = 0
    while len(data) - offset >= _PAGE_HEADER.size:
        capture, version, flags, granule, serial, sequence, crc, count = _PAGE_HEADER.unpack_from(data, offset)
        if capture != _CAPTURE or version != 0:
            raise ValueError(f"no Ogg page at byte {offset}")
        start = offset + _PAGE_HEADER.size
        if len(data) < start + count:
            break
        segments = tuple(data[start:start + count])
        end = start + count + sum(segments)
        if len(data) < end:
            break
        pages.append(OggPage(flags, granule, serial, sequence, crc, segments, bytes(data[start + count:end])))
        offset = end
    return pages, bytes(data[offset:])


def page_packets(pages: Sequence[OggPage]) -> list[bytes]:
    """The whole packets on consecutive pages (the tail of a packet begun before the first page is dropped)."""
    packets: list[bytes] = []
    partial = bytearray()
    whole = False  # `partial` holds a packet from its first byte
    for page in pages:
        if not page.flags & FLAG_CONTINUED:
            partial.clear()
            whole = True
        position = 0
        for lace in page.segments:
            partial += page.body[position:position + lace]
            position += lace
            if lace < 255:
                if whole:
                    packets.append(bytes(partial))
                partial.clear()
                whole = True
    return packets
