"""AudioChunkPool: each chunk is encoded once, into every wire form, for every listener.

The PCM forms (the JSON text frame and the binary frame) are encoded when a chunk is rendered; the
compressed forms (Opus packets as a `format=opus` frame and as Ogg pages, MP3 frames) when the
station fixes the chunk (`compress`), in chunk_id order, by the station's own stateful encoders. The
pool keeps pre-allocated scratch only for the int16 conversion; the forms it returns are immutable
`bytes`/`str` shared by every listener (a few allocations per chunk per station, none per listener),
so no frame is ever rewritten while a ring still holds it.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field

import numpy as np
from websockets.frames import Frame, Opcode

from .codecs.compressed import CodecSettings, CompressedForms, CompressedStream
from .codecs.encoders import TimelineGap
from .protocol import BINARY_HEADER_BYTES, CHUNK_BYTES, SAMPLES_PER_CHUNK

_HEADER = struct.Struct("<Qd")
assert _HEADER.size == BINARY_HEADER_BYTES


OPUS = "opus"  # the format whose frames carry a chunk's Opus packets


@dataclass
class EncodedChunk:
    """One published chunk in its wire forms: PCM as a binary frame and as a JSON `audio` message,
    and, once the station has fixed the chunk, its compressed forms (`compressed`, shared by every
    listener; see `CompressedForms`).

    The JSON `audio` message carries two per-listener fields (`buffer_depth`, `current_tier`); the
    encoded head holds everything else, and the few (depth, tier) variants in use are memoized, so
    listeners at the same depth and tier share one string.
    """

    chunk_id: int
    timestamp: float
    binary: bytes
    json_head: str
    compressed: CompressedForms | None = None
    _variants: dict = field(default_factory=dict, repr=False, compare=False)
    _websocket_frames: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def pcm(self) -> bytes:
        return self.binary[BINARY_HEADER_BYTES:]

    @property
    def opus_frame(self) -> bytes:
        """The body of the chunk's `format=opus` binary frame."""
        if self.compressed is None:
            raise LookupError(f"chunk {self.chunk_id} has no compressed forms")
        return self.compressed.opus_frame

    def json_frame(self, buffer_depth: int, tier: str) -> str:
        key = (buffer_depth, tier)
        frame = self._variants.get(key)
        if frame is None:
            frame = f'{self.json_head},"buffer_depth":{buffer_depth},"current_tier":"{tier}"}}'
            if len(self._variants) < 64:
                self._variants[key] = frame
        return frame

    def frame(self, fmt: str, buffer_depth: int, tier: str) -> str | bytes:
        if fmt == "binary":
            return self.binary
        if fmt == OPUS:
            return self.opus_frame
        return self.json_frame(buffer_depth, tier)

    def websocket_frame(self, fmt: str, buffer_depth: int, tier: str) -> bytes:
        """`frame()` as a complete server-to-client WebSocket frame (unmasked, so the same bytes suit
        every listener): built once per chunk (binary, opus) or per (depth, tier) variant (JSON)."""
        key = fmt if fmt in ("binary", OPUS) else (buffer_depth, tier)
        frame = self._websocket_frames.get(key)
        if frame is None:
            frame = ws_frame(self.frame(fmt, buffer_depth, tier))
            if len(self._websocket_frames) < 64:
                self._websocket_frames[key] = frame
        return frame

    def to_transfer(self) -> tuple:
        """Compact form for passing between processes (no memo): chunk_id, timestamp, binary frame, JSON
        head, then, when the chunk has them, its compressed forms (opus frame, Ogg header pages, Ogg
        pages, MP3 frames)."""
        fields = (self.chunk_id, self.timestamp, self.binary, self.json_head)
        if self.compressed is None:
            return fields
        c = self.compressed
        return fields + (c.opus_frame, c.ogg_header, c.ogg_pages, c.mp3)

    @classmethod
    def from_transfer(cls, fields: tuple) -> "EncodedChunk":
        chunk_id, timestamp, binary, json_head, *compressed = fields
        return cls(chunk_id, timestamp, binary, json_head, CompressedForms(*compressed) if compressed else None)


def ws_frame(payload: str | bytes) -> bytes:
    """One unfragmented, uncompressed server-to-client WebSocket data frame (framing by `websockets`)."""
    if isinstance(payload, str):
        return Frame(Opcode.TEXT, payload.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, payload).serialize(mask=False)


class AudioChunkPool:
    """Encodes one station's chunks into every wire form, once each.

    `encode_chunk` builds the PCM forms, using pre-allocated conversion scratch. With `codecs` (the
    station's encoder settings), `compress` adds a chunk's compressed forms, from the station's one
    `CompressedStream` that runs along its timeline; `station` names the stream (its Ogg serial
    number and title).
    """

    def __init__(self, pool_size: int = 20, samples_per_chunk: int = SAMPLES_PER_CHUNK,
                 codecs: CodecSettings | None = None, station: str = ""):
        self.pool_size = pool_size
        self.samples_per_chunk = samples_per_chunk
        self.chunk_buffers = [np.zeros(samples_per_chunk, dtype=np.int16) for _ in range(pool_size)]
        self.current_index = 0
        self.encoded_count = 0
        self.codecs = codecs
        self.station = station
        self.compressed_stream: CompressedStream | None = None
        self.compressed_count = 0
        self.compressed_streams = 0  # streams started: the first, then one after each jump in the timeline

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

    @property
    def next_compressed_id(self) -> int | None:
        """The chunk the compressed stream continues with (None before the first)."""
        return None if self.compressed_stream is None else self.compressed_stream.next_chunk_id

    def can_compress(self, chunk_id: int) -> bool:
        """Whether a chunk can still get compressed forms: the encoders have not passed it."""
        stream = self.compressed_stream
        return self.codecs is not None and (stream is None or chunk_id >= stream.next_chunk_id)

    def compress(self, chunk: EncodedChunk) -> CompressedForms:
        """Give `chunk` its compressed forms, once: later calls return the same forms.

        Chunks come in chunk_id order. One that does not follow the last chunk compressed (the
        timeline jumped over a hole) starts a new compressed stream (new encoders, new Ogg serial
        number); one before it cannot be encoded any more and raises `TimelineGap`.
        """
        if chunk.compressed is not None:
            return chunk.compressed
        if self.codecs is None:
            raise ValueError("this pool encodes PCM only (no codec settings)")
        stream = self.compressed_stream
        if stream is not None and chunk.chunk_id < stream.next_chunk_id:
            raise TimelineGap(f"the compressed stream is past chunk {chunk.chunk_id} "
                              f"(it continues with {stream.next_chunk_id})")
        if stream is None or not stream.continues_with(chunk.chunk_id):
            stream = self.compressed_stream = CompressedStream(self.station, chunk.chunk_id, self.codecs)
            self.compressed_streams += 1
        pcm = memoryview(chunk.binary)[BINARY_HEADER_BYTES:]
        chunk.compressed = stream.encode(chunk.chunk_id, chunk.timestamp, pcm)
        self.compressed_count += 1
        return chunk.compressed
