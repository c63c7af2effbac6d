"""The wire format of docs/PROTOCOL.md (v1), both directions the load test needs.

Decoding (client side) turns one WebSocket message into an event; encoding (baseline
server side) builds the frames once so they can be broadcast as-is. The HTTP streams
(`http-mp3`, `http-opus`) are read by `httpbody` and `audioclock`.

Deliberately written from docs/PROTOCOL.md rather than imported from `auralis_ray.stream`: the load
generator is an outside client, so a server-side mistake in the wire format cannot hide in a
shared constant.
"""

from __future__ import annotations

import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 44_100
CHANNELS = 2
CHUNK_MS = 100
CHUNK_S = CHUNK_MS / 1000.0
FRAMES_PER_CHUNK = SAMPLE_RATE * CHUNK_MS // 1000  # 4,410
SAMPLES_PER_CHUNK = FRAMES_PER_CHUNK * CHANNELS  # 8,820
CHUNK_BYTES = SAMPLES_PER_CHUNK * 2  # 17,640

BINARY_HEADER = struct.Struct("<Qd")  # chunk_id uint64 LE, timestamp float64 LE
BINARY_FRAME_BYTES = BINARY_HEADER.size + CHUNK_BYTES  # 17,656
BASE64_CHUNK_CHARS = 4 * ((CHUNK_BYTES + 2) // 3)  # 23,520

OPUS_LENGTH = struct.Struct(">H")  # before each Opus packet of a `format=opus` frame

TIER_TARGET_MS = {"minimal": 500, "normal": 1000, "stable": 2000, "defensive": 3000}
WEBSOCKET_FORMATS = ("json", "binary", "opus")  # the `format` query parameter of /ws/audio
HTTP_FORMATS = ("http-mp3", "http-opus")  # GET /listen/{station}.mp3 and .opus
FORMATS = WEBSOCKET_FORMATS + HTTP_FORMATS


class FrameError(ValueError):
    """A message that does not follow PROTOCOL.md (bad JSON, bad length, missing field)."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A binary audio frame's header."""

    chunk_id: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A JSON message other than audio: its `type` and the whole object."""

    type: str
    body: dict[str, Any]


def decode_binary(data: bytes) -> AudioFrame:
    """A binary audio frame: 16-byte header, then exactly one chunk of PCM."""
    if len(data) != BINARY_FRAME_BYTES:
        raise FrameError(f"binary frame of {len(data)} bytes, expected {BINARY_FRAME_BYTES}")
    chunk_id, timestamp = BINARY_HEADER.unpack_from(data)
    return AudioFrame(chunk_id, timestamp)


def decode_opus(data: bytes) -> AudioFrame:
    """A `format=opus` frame: the binary frame's 16-byte header, then the chunk's Opus packets, each
    after its length as a 2-byte big-endian integer. The packets are checked to fill the frame
    exactly, not decoded."""
    if len(data) < BINARY_HEADER.size:
        raise FrameError(f"opus frame of {len(data)} bytes, shorter than its {BINARY_HEADER.size}-byte header")
    offset = BINARY_HEADER.size
    end = len(data)
    while offset < end:
        if offset + OPUS_LENGTH.size > end:
            raise FrameError(f"opus frame ends inside a packet length at byte {offset}")
        (size,) = OPUS_LENGTH.unpack_from(data, offset)
        offset += OPUS_LENGTH.size + size
        if size == 0 or offset > end:
            raise FrameError(f"opus frame holds a packet of {size} bytes that does not fit")
    chunk_id, timestamp = BINARY_HEADER.unpack_from(data)
    return AudioFrame(chunk_id, timestamp)


def decode_text(text: str | bytes, verify_pcm: bool = True) -> AudioFrame | ControlMessage:
    """A JSON text frame: an `audio` message or a control message.

    `verify_pcm`: decode the base64 audio strictly and check its length (~75 µs a chunk on this
    machine's CPU, four times the JSON parse); otherwise only the encoded length is checked, which a
    load generator sharing the server's cores does for most chunks (`client.VERIFY_PCM_EVERY`).
    """
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise FrameError("JSON message without a string 'type'")
    if msg["type"] != "audio":
        return ControlMessage(msg["type"], msg)
    try:
        chunk_id = msg["chunk_id"]
        timestamp = float(msg["timestamp"])
        data = msg["data"]
        size = len(binascii.a2b_base64(data, strict_mode=True)) if verify_pcm else None
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise FrameError(f"bad audio message: {exc!r}") from None
    if not isinstance(chunk_id, int) or isinstance(chunk_id, bool):
        raise FrameError(f"chunk_id {chunk_id!r} is not an integer")
    if not isinstance(data, str):
        raise FrameError("audio data is not a string")
    if len(data) != BASE64_CHUNK_CHARS:
        raise FrameError(f"audio data of {len(data)} base64 characters, expected {BASE64_CHUNK_CHARS}")
    if size is not None and size != CHUNK_BYTES:
        raise FrameError(f"audio data of {size} bytes, expected {CHUNK_BYTES}")
    return AudioFrame(chunk_id, timestamp)


def encode_binary(chunk_id: int, timestamp: float, pcm: bytes) -> bytes:
    return BINARY_HEADER.pack(chunk_id, timestamp) + pcm


def encode_audio_json(
    chunk_id: int, timestamp: float, pcm_b64: str, *, buffer_depth: int, tier: str
) -> bytes:
    """UTF-8 JSON of an `audio` message (bytes, ready for a text frame)."""
    return json.dumps(
        {
            "type": "audio",
            "chunk_id": chunk_id,
            "data": pcm_b64,
            "timestamp": timestamp,
            "buffer_depth": buffer_depth,
            "current_tier": tier,
        },
        separators=(",", ":"),
    ).encode()
