"""AudioChunkPool: each chunk is encoded once, into both wire frames, for every listener.

The pool keeps pre-allocated scratch only for the int16 conversion; the frames it returns are
immutable `bytes`/`str` shared by every listener (two allocations per chunk per station, none per
listener), so no frame is ever rewritten while a ring still holds it.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field

import numpy as np
from websockets.frames import Frame, Opcode

from .protocol import BINARY_HEADER_BYTES, CHUNK_BYTES, SAMPLES_PER_CHUNK

_HEADER = struct.Struct("<Qd")
assert _HEADER.size == BINARY_HEADER_BYTES


@dataclass
class EncodedChunk:
    """One published chunk in its two wire forms.

    The JSON `audio` message carries two per-listener fields (`buffer_depth`, `current_tier`); the
    encoded head holds everything else, and the few (depth, tier) variants in use are memoized, so
    listeners at the same depth and tier share one string.
    """

    chunk_id: int
    timestamp: float
    binary: bytes
    json_head: str
    _variants: dict = field(default_factory=dict, repr=False, compare=False)
    _wire: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def pcm(self) -> bytes:
        return self.binary[BINARY_HEADER_BYTES:]

    def json_frame(self, buffer_depth: int, tier: str) -> str:
        key = (buffer_depth, tier)
        frame = self._variants.get(key)
        if frame is None:
            frame = f'{self.json_head},"buffer_depth":{buffer_depth},"current_tier":"{tier}"}}'
            if len(self._variants) < 64:
                self._variants[key] = frame
        return frame

    def frame(self, fmt: str, buffer_depth: int, tier: str) -> str | bytes:
        return self.binary if fmt == "binary" else self.json_frame(buffer_depth, tier)

    def wire_frame(self, fmt: str, buffer_depth: int, tier: str) -> bytes:
        """`frame()` as a complete server-to-client WebSocket frame (unmasked, so the same bytes suit
        every listener): built once per chunk (binary) or per (depth, tier) variant (JSON)."""
        key = None if fmt == "binary" else (buffer_depth, tier)
        wire = self._wire.get(key)
        if wire is None:
            wire = ws_frame(self.frame(fmt, buffer_depth, tier))
            if len(self._wire) < 64:
                self._wire[key] = wire
        return wire

    def to_wire(self) -> tuple[int, float, bytes, str]:
        """Compact form for passing between processes (no memo)."""
        return (self.chunk_id, self.timestamp, self.binary, self.json_head)

    @classmethod
    def from_wire(cls, wire: tuple[int, float, bytes, str]) -> "EncodedChunk":
        return cls(*wire)


def ws_frame(payload: str | bytes) -> bytes:
    """One unfragmented, uncompressed server-to-client WebSocket data frame (framing by `websockets`)."""
    if isinstance(payload, str):
        return Frame(Opcode.TEXT, payload.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, payload).serialize(mask=False)


class AudioChunkPool:
    """Encodes PCM chunks into wire frames using pre-allocated conversion scratch."""

    def __init__(self, pool_size: int = 20, samples_per_chunk: int = SAMPLES_PER_CHUNK):
        self.pool_size = pool_size
        self.samples_per_chunk = samples_per_chunk
        self.chunk_buffers = [np.zeros(samples_per_chunk, dtype=np.int16) for _ in range(pool_size)]
        self.current_index = 0
        self.encoded_count = 0

    def _scratch(self) -> np.ndarray:
        buf = self.chunk_buffers[self.current_index]
        self.current_index = (self.current_index + 1) % self.pool_size
        return buf

    def to_pcm(self, audio_chunk: np.ndarray) -> bytes:
        """int16 or float [-1, 1] samples (interleaved or [frames, 2]) to 17,640 PCM bytes."""
        flat = np.asarray(audio_chunk).reshape(-1)
        if flat.size != self.samples_per_chunk:
            raise ValueError(f"a chunk has {self.samples_per_chunk} samples, got {flat.size}")
        if flat.dtype == np.int16:
            return flat.astype("<i2", copy=False).tobytes()
        scratch = self._scratch()
        np.rint(np.clip(flat, -1.0, 1.0) * 32767.0, out=scratch, casting="unsafe")
        return scratch.astype("<i2", copy=False).tobytes()

    def encode_chunk(self, chunk_id: int, timestamp: float, pcm: bytes | np.ndarray) -> EncodedChunk:
        if not isinstance(pcm, (bytes, bytearray)):
            pcm = self.to_pcm(pcm)
        if len(pcm) != CHUNK_BYTES:
            raise ValueError(f"a chunk is {CHUNK_BYTES} bytes, got {len(pcm)}")
        binary = _HEADER.pack(chunk_id, timestamp) + bytes(pcm)
        data = base64.b64encode(pcm).decode("ascii")
        json_head = (
            f'{{"type":"audio","chunk_id":{chunk_id},"data":"{data}","timestamp":{json.dumps(timestamp)}'
        )
        self.encoded_count += 1
        return EncodedChunk(chunk_id, timestamp, binary, json_head)
