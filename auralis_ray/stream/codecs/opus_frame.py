"""The body of a `format=opus` binary WebSocket frame: one chunk's Opus packets.

Layout: the PCM binary frame's 16-byte header (chunk_id as little-endian u64, publish timestamp as
little-endian f64), then each Opus packet of the chunk as a 2-byte big-endian length and its bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..protocol import BINARY_HEADER_BYTES

_HEADER = struct.Struct("<Qd")  # the PCM binary frame's header (stream/pool.py)
_LENGTH = struct.Struct(">H")
MAX_PACKET_BYTES = 0xFFFF
assert _HEADER.size == BINARY_HEADER_BYTES


@dataclass(frozen=True)
class OpusFrame:
    """A decoded `format=opus` frame."""

    chunk_id: int
    timestamp: float
    packets: tuple[bytes, ...]


def encode_opus_frame(chunk_id: int, timestamp: float, packets: Sequence[bytes]) -> bytes:
    parts = [_HEADER.pack(chunk_id, timestamp)]
    for packet in packets:
        if not 0 < len(packet) <= MAX_PACKET_BYTES:
            raise ValueError(f"an Opus packet is 1-{MAX_PACKET_BYTES} bytes, got {len(packet)}")
        parts.append(_LENGTH.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


def decode_opus_frame(body: bytes) -> OpusFrame:
    """Parse a frame body; a truncated or malformed body raises ValueError."""
    if len(body) < _HEADER.size:
        raise ValueError(f"an opus frame starts with a {_HEADER.size}-byte header, got {len(body)} bytes")
    chunk_id, timestamp = _HEADER.unpack_from(body)
    packets = []
    offset = _HEADER.size
    while offset < len(body):
        if offset + _LENGTH.size > len(body):
            raise ValueError("an opus frame ends inside a packet length")
        (size,) = _LENGTH.unpack_from(body, offset)
        offset += _LENGTH.size
        if size == 0 or offset + size > len(body):
            raise ValueError(f"an opus frame holds a packet of {size} bytes at byte {offset}, which does not fit")
        packets.append(bytes(body[offset:offset + size]))
        offset += size
    return OpusFrame(chunk_id, timestamp, tuple(packets))
