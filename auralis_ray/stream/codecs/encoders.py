"""Stateful Opus and MP3 encoders that run along one station's timeline, in process: Opus through PyAV
(libopus), MP3 through lameenc (LAME).

Each encoder takes the station's 100 ms chunks of 44.1 kHz stereo int16 PCM in chunk_id order and
returns, per chunk, the compressed packets that the chunk completes. One encoder serves every listener
of a station; its state (resampler filter, codec history, bit reservoir) carries across chunk
boundaries, so the compressed stream has no seam there.

Which chunk a packet belongs to: the packets that the encoder emits while it is fed chunk k belong to
chunk k. So every packet belongs to exactly one chunk, and the packets of consecutive chunks, joined,
are exactly the encoder's packet sequence. A chunk may complete fewer or more packets than its length
holds: the resampler and the codec hold back a few samples (the first Opus chunk completes 4 packets,
the following ones 5; an MP3 chunk completes 3 or 4 frames of 1,152 samples, at low bitrates now and
then one fewer while LAME's bit reservoir holds a frame back).

PyAV and lameenc are imported when an encoder is made: the replicas handle compressed forms but never
encode, and FFmpeg's libraries would cost each of them memory for nothing. A process that encodes
loads them when it starts (`load_codec_libraries`), so that its first compressed listener does not
wait for them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..protocol import CHANNELS, CHUNK_BYTES, FRAMES_PER_CHUNK, SAMPLE_RATE

OPUS_SAMPLE_RATE = 48_000
OPUS_FRAME_SAMPLES = 960  # 20 ms at 48 kHz
MP3_FRAME_SAMPLES = 1152  # one MPEG-1 Layer III frame
OPUS_VBR_MODES = ("off", "on", "constrained")
DEFAULT_BITRATE = 128_000
# The defaults of `encoding.*` (auralis_ray/config.py says what each level does). Per station, Opus at
# complexity 5 costs about 0.9 % of a core and LAME at -q 7 (its fast mode, without noise shaping) about
# 0.7 %; libopus' top complexity costs about 1.4 times as much, LAME's own default, -q 3, about 1.7 times
# (benchmarks/bench_codec.py --sweep).
DEFAULT_OPUS_COMPLEXITY = 5
DEFAULT_MP3_QUALITY = 7


@dataclass(frozen=True)
class CompressedChunk:
    """The packets one chunk completes, and where the stream stands after them.

    `samples_end` counts codec-rate samples (48 kHz for Opus, 44.1 kHz for MP3) of every packet the
    encoder has produced up to and including this chunk's, encoder delay included (for Opus it is the
    Ogg granule position after the chunk's last packet).
    """

    chunk_id: int
    packets: tuple[bytes, ...]
    packet_samples: tuple[int, ...]
    samples_end: int

    @property
    def payload(self) -> bytes:
        """The packets back to back (for MP3: the stream's bytes for this chunk)."""
        return b"".join(self.packets)


class TimelineGap(ValueError):
    """A chunk that does not continue the encoder's timeline (a stateful encoder cannot skip or rewind)."""


class ChunkEncoder:
    """An encoder fed whole chunks in chunk_id order; the codec-specific subclasses encode them."""

    sample_rate: int

    def __init__(self, bitrate: int):
        if bitrate <= 0:
            raise ValueError(f"bitrate must be positive, got {bitrate}")
        self.bitrate = int(bitrate)
        self.next_chunk_id: int | None = None  # the chunk the timeline continues with
        self.samples_end = 0
        self.encoded_chunks = 0

    def encode(self, chunk_id: int, pcm: bytes | memoryview) -> CompressedChunk:
        """Encode the next chunk (17,640 bytes of interleaved little-endian int16 stereo PCM)."""
        if len(pcm) != CHUNK_BYTES:
            raise ValueError(f"a chunk is {CHUNK_BYTES} bytes, got {len(pcm)}")
        if self.next_chunk_id is not None and chunk_id != self.next_chunk_id:
            raise TimelineGap(f"the encoder continues with chunk {self.next_chunk_id}, got chunk {chunk_id}")
        packets, durations = self._encode_chunk(pcm)
        self.samples_end += sum(durations)
        self.encoded_chunks += 1
        self.next_chunk_id = chunk_id + 1
        return CompressedChunk(chunk_id, packets, durations, self.samples_end)

    def _encode_chunk(self, pcm: bytes | memoryview) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        """The packets the chunk completes, and each one's duration in codec-rate samples."""
        raise NotImplementedError


class PyAVEncoder(ChunkEncoder):
    """A PyAV (FFmpeg) audio encoder, opened once and fed each chunk as one frame."""

    codec_name: str

    def __init__(self, bitrate: int, options: dict[str, str], sample_format: str):
        super().__init__(bitrate)
        import av

        self._av = av
        context = av.CodecContext.create(self.codec_name, "w")
        context.sample_rate = self.sample_rate
        context.layout = "stereo"
        context.format = sample_format
        context.bit_rate = self.bitrate
        context.time_base = Fraction(1, self.sample_rate)
        context.thread_count = 1  # one thread: the same input gives the same bytes
        context.options = options
        context.open()
        self._context = context
        self._input_time_base = Fraction(1, SAMPLE_RATE)

    def _encode_chunk(self, pcm: bytes | memoryview) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, FRAMES_PER_CHUNK * CHANNELS)
        frame = self._av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = self._input_time_base
        frame.pts = self.encoded_chunks * FRAMES_PER_CHUNK
        packets = self._context.encode(frame)
        return tuple(bytes(packet) for packet in packets), tuple(int(packet.duration) for packet in packets)


class OpusEncoder(PyAVEncoder):
    """Opus at 48 kHz stereo, 20 ms packets (libopus), resampled from 44.1 kHz inside the pipeline.

    `complexity` is libopus' 0-10 analysis effort; `vbr` is "constrained" (the bitrate holds over a
    short window), "on" (free VBR) or "off" (every packet the same size).
    """

    codec_name = "libopus"
    sample_rate = OPUS_SAMPLE_RATE

    def __init__(self, bitrate: int = DEFAULT_BITRATE, complexity: int = DEFAULT_OPUS_COMPLEXITY,
                 vbr: str = "constrained"):
        if not 0 <= complexity <= 10:
            raise ValueError(f"complexity must be 0-10, got {complexity}")
        if vbr not in OPUS_VBR_MODES:
            raise ValueError(f"vbr must be one of {', '.join(OPUS_VBR_MODES)}, got {vbr!r}")
        super().__init__(bitrate, {"compression_level": str(complexity), "vbr": vbr,
                                   "frame_duration": str(1000 * OPUS_FRAME_SAMPLES // OPUS_SAMPLE_RATE),
                                   "application": "audio"}, "s16")
        self.pre_skip = _opus_head_pre_skip(self._context.extradata)


class Mp3Encoder(ChunkEncoder):
    """MPEG-1 Layer III at 44.1 kHz stereo, constant bitrate (LAME, through lameenc); every packet is one
    whole frame, so a listener can start on any chunk's first frame.

    `quality` is LAME's 0 (best, slowest) to 9 (fastest) algorithm choice; it does not change the bitrate.
    LAME codes joint stereo (mid/side) up to 128 kbit/s and left/right stereo from 160 kbit/s, its own
    choice for each bitrate. `encoder_delay` is how many samples the decoded stream lags the PCM it was
    encoded from. The stream has no Xing/Info frame: it is a live stream, with no length to announce.

    LAME hands back its output as bytes that need not end on a frame boundary; the encoder splits them
    at the frame headers and keeps an incomplete last frame for the next chunk.

    At constant bitrates LAME scales its input down (by 0.95 up to 160 kbit/s, to 1.0 at 256 kbit/s) to
    leave decoders headroom; the encoder scales the PCM up by as much first, so that the MP3 stream
    plays as loud as the PCM stream (the few samples that would exceed full scale, above 0.95 of it at
    128 kbit/s, stay at full scale; the station's true-peak limiter keeps its audio below that).
    """

    sample_rate = SAMPLE_RATE
    encoder_delay = 1105  # LAME's 576 plus an MP3 decoder's 529 (without a LAME tag, decoders keep both)

    def __init__(self, bitrate: int = DEFAULT_BITRATE, quality: int = DEFAULT_MP3_QUALITY):
        if not 0 <= quality <= 9:
            raise ValueError(f"quality must be 0-9, got {quality}")
        super().__init__(bitrate)
        self.quality = quality
        import lameenc

        lame = lameenc.Encoder()  # lameenc writes no Xing/Info frame
        lame.set_bit_rate(self.bitrate // 1000)
        lame.set_in_sample_rate(SAMPLE_RATE)
        lame.set_out_sample_rate(SAMPLE_RATE)  # else LAME resamples low bitrates to 32 kHz or less
        lame.set_channels(CHANNELS)
        lame.set_quality(quality)
        lame.silence()
        self._lame = lame
        scale = lame_input_scale(self.bitrate)
        self._input_gain = None if scale == 1.0 else np.float32(1.0 / scale)
        self._unfinished = bytearray()  # the start of a frame LAME has not completed yet

    def _encode_chunk(self, pcm: bytes | memoryview) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        self._unfinished += self._lame.encode(self._lame_input(pcm))
        frames = []
        start, available = 0, len(self._unfinished)
        while available - start >= MP3_HEADER_BYTES:
            end = start + mp3_frame_length(self._unfinished[start:start + MP3_HEADER_BYTES])
            if end > available:
                break
            frames.append(bytes(self._unfinished[start:end]))
            start = end
        del self._unfinished[:start]
        return tuple(frames), (MP3_FRAME_SAMPLES,) * len(frames)

    def _lame_input(self, pcm: bytes | memoryview) -> bytes:
        """The chunk's PCM scaled up by LAME's input scale, saturated to int16."""
        if self._input_gain is None:
            return bytes(pcm)
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        samples *= self._input_gain
        np.rint(samples, out=samples)
        np.clip(samples, -32768, 32767, out=samples)
        return samples.astype("<i2").tobytes()


# An MPEG-1 Layer III frame header: 11 sync bits, the version and layer, then the bitrate index (4 bits),
# the sample rate index (2 bits) and the padding bit.
MP3_HEADER_BYTES = 4
_MPEG1_LAYER3_BITRATES_KBPS = (None, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, None)
_MPEG1_SAMPLE_RATES = (44_100, 48_000, 32_000, None)


def load_codec_libraries() -> None:
    """Import PyAV and lameenc and open one encoder of each (about 80 ms and 22 MB, once per process)."""
    OpusEncoder()
    Mp3Encoder()


def mp3_frame_length(header: bytes | bytearray) -> int:
    """Bytes in the MPEG-1 Layer III frame that starts with `header`: 144 * bitrate / sample rate + padding."""
    if header[0] != 0xFF or header[1] & 0xFE != 0xFA:
        raise ValueError(f"not an MPEG-1 Layer III frame header: {bytes(header[:MP3_HEADER_BYTES]).hex()}")
    bitrate_kbps = _MPEG1_LAYER3_BITRATES_KBPS[header[2] >> 4]
    sample_rate = _MPEG1_SAMPLE_RATES[(header[2] >> 2) & 0x3]
    if bitrate_kbps is None or sample_rate is None:
        raise ValueError(f"a free or invalid bitrate or sample rate: {bytes(header[:MP3_HEADER_BYTES]).hex()}")
    return 144_000 * bitrate_kbps // sample_rate + ((header[2] >> 1) & 1)


# LAME's constant-bitrate presets (kbit/s) and the input scale each applies; LAME uses the nearest one.
_LAME_BITRATES_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_LAME_SCALE_ABOVE_160 = {192: 0.97, 224: 0.98, 256: 1.0, 320: 1.0}


def lame_input_scale(bitrate: int) -> float:
    """The factor LAME multiplies its input by at a constant `bitrate` (bit/s)."""
    kbps = bitrate / 1000
    nearest = min(_LAME_BITRATES_KBPS, key=lambda preset: (abs(preset - kbps), -preset))
    return _LAME_SCALE_ABOVE_160.get(nearest, 0.95)


# The Opus identification header (RFC 7845 section 5.1): magic, version, channels, pre-skip, input sample
# rate, output gain, channel mapping family.
OPUS_HEAD = struct.Struct("<8sBBHIhB")


def _opus_head_pre_skip(extradata: bytes | None) -> int:
    """The pre-skip libopus reports in the OpusHead it writes as the codec's extradata."""
    if not extradata or len(extradata) < OPUS_HEAD.size:
        raise RuntimeError("libopus did not report an OpusHead")
    magic, _version, _channels, pre_skip, *_ = OPUS_HEAD.unpack_from(extradata)
    if magic != b"OpusHead":
        raise RuntimeError("libopus did not report an OpusHead")
    return pre_skip
