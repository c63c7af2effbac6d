"""Compressed streams: Opus and MP3 encoders along a timeline, Ogg pages, the opus WebSocket frame, ICY
metadata. Decoded with PyAV and with Debian's ffmpeg (tests that need it skip when it is missing)."""

import functools
import io
import random
import shutil
import struct
import subprocess
import zlib

import av
import numpy as np
import pytest
from scipy import signal

from audio_checks import clicks, integrated_lufs
from auralis_ray.config import GPUConfig
from auralis_ray.core_settings import batch_render_config, render_block_frames
from auralis_ray.music.params import StationParams
from auralis_ray.stream.codecs import (MP3_FRAME_SAMPLES, OPUS_FRAME_SAMPLES, IcyDemuxer, IcyInterleaver,
                                       Mp3Encoder, OggOpusStream, OpusEncoder, TimelineGap, decode_opus_frame,
                                       encode_opus_frame, icy_metadata_block, ogg_crc, page_packets, parse_pages)
from auralis_ray.stream.codecs.encoders import lame_input_scale
from auralis_ray.stream.codecs.ogg import FLAG_CONTINUED, FLAG_FIRST, packet_pages
from auralis_ray.stream.pool import AudioChunkPool
from auralis_ray.stream.protocol import CHUNK_BYTES, FRAMES_PER_CHUNK, SAMPLE_RATE

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.usefixtures("ffmpeg")  # skips, or fails under CI=true, without it
OPUS_RATE = 48_000
JOIN_CHUNK = 40  # where a listener tunes in, in the tests that join mid-stream
LOUDNESS_LU = 0.5


def chunks_of(pcm: np.ndarray) -> list[bytes]:
    data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
    return [data[i:i + CHUNK_BYTES] for i in range(0, len(data) - CHUNK_BYTES + 1, CHUNK_BYTES)]


def smooth_tones(chunks: int) -> np.ndarray:
    """Two slowly swelling tones per channel, faded in: int16 [frames, 2], free of any discontinuity."""
    t = np.arange(chunks * FRAMES_PER_CHUNK) / SAMPLE_RATE
    swell = (0.5 + 0.3 * np.sin(2 * np.pi * 0.3 * t)) * np.clip(t / 0.2, 0.0, 1.0)
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1000 * t)
    right = 0.3 * np.sin(2 * np.pi * 660 * t + 1.0)
    return np.round(np.stack([left, right], axis=1) * swell[:, None] * 32767).astype("<i2")


@functools.lru_cache(maxsize=None)
def station_audio() -> np.ndarray:
    """12 s of a real station (the project's synthesis, as `auralis render` writes it)."""
    import tempfile
    import wave

    from auralis_ray.synth.offline import render_to_wav

    gpu = GPUConfig()
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/focus.wav"
        render_to_wav(path, StationParams.from_preset("focus"), 3, 12.0, batch_render_config(gpu),
                      render_block_frames(gpu), progress=False)
        with wave.open(path) as wav:
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2).copy()


def encode_all(encoder, chunks: list[bytes], first_chunk_id: int = 0):
    return [encoder.encode(first_chunk_id + i, chunk) for i, chunk in enumerate(chunks)]


def ogg_bytes(stream: OggOpusStream, compressed, join: int = 0) -> bytes:
    pages = [stream.chunk_pages(chunk) for chunk in compressed]
    return stream.header_pages + b"".join(pages[join:])


def mp3_bytes(compressed, join: int = 0) -> bytes:
    return b"".join(chunk.payload for chunk in compressed[join:])


def pyav_decode(data: bytes, container: str) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data), format=container) as source:
        frames = list(source.decode(audio=0))
    audio = np.concatenate([frame.to_ndarray() for frame in frames], axis=1).T.astype(np.float64)
    return audio, frames[0].sample_rate


def ffmpeg_decode(data: bytes, container: str, rate: int) -> np.ndarray:
    """Decode with Debian's ffmpeg reading the stream from a pipe; any message it prints fails the test."""
    result = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-f", container, "-i", "pipe:0",
                             "-f", "f32le", "-ac", "2", "-ar", str(rate), "pipe:1"],
                            input=data, capture_output=True, timeout=60, check=True)
    assert result.stderr == b""
    return np.frombuffer(result.stdout, dtype="<f4").reshape(-1, 2).astype(np.float64)


def as_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float64) / 32768.0


def to_opus_rate(pcm: np.ndarray) -> np.ndarray:
    return signal.resample_poly(as_float(pcm), OPUS_RATE // 300, SAMPLE_RATE // 300, axis=0)


def residual_near_and_away_from_boundaries(decoded: np.ndarray, source: np.ndarray, chunk_frames: int):
    """Peak of decoded - source within 1 ms of each chunk boundary, and away from them."""
    n = min(len(decoded), len(source))
    error = np.abs(decoded[:n] - source[:n]).max(axis=1)
    margin = chunk_frames // 100
    boundaries = np.arange(1, n // chunk_frames) * chunk_frames
    near = (boundaries[:, None] + np.arange(-margin, margin)[None, :]).ravel()
    away = np.setdiff1d(np.arange(chunk_frames, n - chunk_frames), near)
    return error[near].max(), error[away].max()


# ---- encoders along the timeline ---------------------------------------------------------------


def test_opus_packets_are_20_ms_and_a_chunk_completes_five():
    encoder = OpusEncoder()
    compressed = encode_all(encoder, chunks_of(smooth_tones(200)), first_chunk_id=5000)
    counts = [len(chunk.packets) for chunk in compressed]
    assert counts[0] == 4 and set(counts[1:]) == {5}  # the resampler holds back a few samples at first
    assert all(samples == OPUS_FRAME_SAMPLES for chunk in compressed for samples in chunk.packet_samples)
    assert [chunk.samples_end for chunk in compressed] == list(np.cumsum(counts) * OPUS_FRAME_SAMPLES)
    assert [chunk.chunk_id for chunk in compressed] == list(range(5000, 5200))
    assert encoder.pre_skip == 312
    kbps = sum(len(chunk.payload) for chunk in compressed[1:]) * 8 / (len(compressed) - 1) / 100
    assert 115 <= kbps <= 135
    assert max(len(chunk.payload) for chunk in compressed) <= 1.2 * 1600


def test_the_opus_bitrate_is_a_parameter():
    compressed = encode_all(OpusEncoder(bitrate=64_000), chunks_of(smooth_tones(100)))
    kbps = sum(len(chunk.payload) for chunk in compressed[1:]) * 8 / (len(compressed) - 1) / 100
    assert 56 <= kbps <= 70


def mp3_frame_length(header: bytes) -> int:
    """Bytes in one MPEG-1 Layer III frame at 44.1 kHz, from its 4-byte header."""
    assert header[0] == 0xFF and header[1] & 0xFE == 0xFA  # sync, MPEG-1, Layer III
    bitrate_kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[header[2] >> 4]
    assert (header[2] >> 2) & 0x3 == 0  # 44.1 kHz
    return 144_000 * bitrate_kbps // 44_100 + ((header[2] >> 1) & 1)


@pytest.mark.parametrize("bitrate", [64_000, 128_000, 192_000])
def test_mp3_packets_are_whole_constant_bitrate_frames(bitrate):
    chunks = chunks_of(smooth_tones(200))
    compressed = encode_all(Mp3Encoder(bitrate=bitrate), chunks)
    frames = [packet for chunk in compressed for packet in chunk.packets]
    assert all(len(frame) == mp3_frame_length(frame[:4]) for frame in frames)  # 44.1 kHz at every bitrate
    assert {frame[2] >> 4 for frame in frames} == {{64_000: 5, 128_000: 9, 192_000: 11}[bitrate]}
    assert {frame[3] >> 6 for frame in frames} == {1 if bitrate <= 128_000 else 0}  # joint stereo up to 128
    # a live stream: no Xing/Info frame (its tag follows the 32 bytes of stereo side information)
    assert not any(frame[36:40] in (b"Xing", b"Info") for frame in frames)
    assert all(samples == MP3_FRAME_SAMPLES for chunk in compressed for samples in chunk.packet_samples)
    counts = [len(chunk.packets) for chunk in compressed]
    # 4,410 samples a chunk, 1,152 a frame; at low bitrates LAME's bit reservoir now and then holds one back
    assert {3, 4} <= set(counts[1:]) <= ({3, 4} if bitrate >= 128_000 else {2, 3, 4})
    # every frame is out as soon as the encoder's delay allows: none held back longer than one chunk
    encoded_samples = len(chunks) * FRAMES_PER_CHUNK + Mp3Encoder.encoder_delay
    assert 0 <= encoded_samples - len(frames) * MP3_FRAME_SAMPLES < FRAMES_PER_CHUNK + MP3_FRAME_SAMPLES


@pytest.mark.parametrize("make_encoder", [OpusEncoder, Mp3Encoder], ids=["opus", "mp3"])
def test_the_same_pcm_encodes_to_the_same_bytes(make_encoder):
    chunks = chunks_of(smooth_tones(50))
    first = encode_all(make_encoder(), chunks)
    second = encode_all(make_encoder(), chunks)
    assert [chunk.packets for chunk in first] == [chunk.packets for chunk in second]
    from_views = encode_all(make_encoder(), [memoryview(bytearray(chunk)) for chunk in chunks])
    assert [chunk.packets for chunk in from_views] == [chunk.packets for chunk in first]


@pytest.mark.parametrize("make_encoder", [OpusEncoder, Mp3Encoder], ids=["opus", "mp3"])
def test_an_encoder_only_continues_its_timeline(make_encoder):
    encoder = make_encoder()
    chunk = chunks_of(smooth_tones(1))[0]
    encoder.encode(10, chunk)
    with pytest.raises(TimelineGap, match="continues with chunk 11, got chunk 12"):
        encoder.encode(12, chunk)
    with pytest.raises(TimelineGap):
        encoder.encode(10, chunk)
    with pytest.raises(ValueError, match="17640 bytes"):
        encoder.encode(11, chunk[:-2])
    assert encoder.encode(11, chunk).chunk_id == 11


def test_encoder_settings_are_checked():
    with pytest.raises(ValueError, match="bitrate"):
        OpusEncoder(bitrate=0)
    with pytest.raises(ValueError, match="complexity"):
        OpusEncoder(complexity=11)
    with pytest.raises(ValueError, match="vbr"):
        OpusEncoder(vbr="sometimes")
    with pytest.raises(ValueError, match="quality"):
        Mp3Encoder(quality=10)


def test_lame_input_scale_follows_the_nearest_preset():
    assert lame_input_scale(128_000) == lame_input_scale(160_000) == 0.95
    assert lame_input_scale(192_000) == 0.97
    assert lame_input_scale(224_000) == 0.98
    assert lame_input_scale(256_000) == lame_input_scale(320_000) == 1.0
    assert lame_input_scale(176_000) == 0.97  # a tie goes to the higher preset, as in LAME


# ---- decoded audio: PyAV ------------------------------------------------------------------------


def test_pyav_decodes_opus_aligned_with_the_source_and_without_a_seam():
    source = smooth_tones(150)
    encoder = OpusEncoder()
    compressed = encode_all(encoder, chunks_of(source))
    decoded, rate = pyav_decode(ogg_bytes(OggOpusStream(11, encoder.pre_skip, SAMPLE_RATE), compressed), "ogg")
    assert rate == OPUS_RATE
    reference = to_opus_rate(source)
    near, away = residual_near_and_away_from_boundaries(decoded, reference, OPUS_RATE // 10)
    assert away < 0.02  # aligned: pre-skip removes exactly the encoder's delay (one sample off: 0.03)
    assert near <= 1.5 * away  # the chunk boundaries are no worse than anywhere else
    assert clicks(decoded, OPUS_RATE).count == 0


def test_pyav_decodes_mp3_aligned_with_the_source_and_without_a_seam():
    source = smooth_tones(150)
    decoded, rate = pyav_decode(mp3_bytes(encode_all(Mp3Encoder(), chunks_of(source))), "mp3")
    assert rate == SAMPLE_RATE
    decoded = decoded[Mp3Encoder.encoder_delay:]
    near, away = residual_near_and_away_from_boundaries(decoded, as_float(source), FRAMES_PER_CHUNK)
    assert away < 1e-3  # aligned to the sample (one sample off: 0.03)
    assert near <= 1.5 * away
    assert clicks(decoded).count == 0


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_pyav_decoded_station_audio_is_as_loud_as_the_pcm(codec):
    source = station_audio()
    if codec == "opus":
        encoder = OpusEncoder()
        data = ogg_bytes(OggOpusStream(3, encoder.pre_skip, SAMPLE_RATE), encode_all(encoder, chunks_of(source)))
        decoded, rate = pyav_decode(data, "ogg")
    else:
        decoded, rate = pyav_decode(mp3_bytes(encode_all(Mp3Encoder(), chunks_of(source))), "mp3")
        decoded = decoded[Mp3Encoder.encoder_delay:]
    assert abs(integrated_lufs(decoded[rate:], rate) - integrated_lufs(source[SAMPLE_RATE:])) <= LOUDNESS_LU
    assert clicks(decoded, rate).count == 0


# ---- decoded audio: Debian's ffmpeg, joining mid-stream --------------------------------------------


@needs_ffmpeg
def test_ffmpeg_plays_ogg_opus_joined_mid_stream_like_the_continuous_stream():
    """A listener tuning in gets the header pages, then the pages from its chunk on; ffmpeg decodes that
    without a message, and after the decoder settles (Opus asks for 80 ms) it hears the continuous stream."""
    source = station_audio()
    encoder = OpusEncoder()
    compressed = encode_all(encoder, chunks_of(source))
    whole = ffmpeg_decode(ogg_bytes(OggOpusStream(5, encoder.pre_skip, SAMPLE_RATE), compressed), "ogg", OPUS_RATE)
    joined = ffmpeg_decode(ogg_bytes(OggOpusStream(5, encoder.pre_skip, SAMPLE_RATE), compressed, JOIN_CHUNK), "ogg",
                           OPUS_RATE)
    # the joined decoder drops pre-skip from the first packet it gets: it starts where that packet's
    # granule range starts in the whole stream's output
    first_granule = compressed[JOIN_CHUNK - 1].samples_end
    assert len(joined) == len(whole) - first_granule
    settled = OPUS_RATE // 10
    difference = np.abs(joined[settled:] - whole[first_granule + settled:])
    assert difference.max() < 0.02 and np.sqrt((difference**2).mean()) < 1e-3
    source_from = (first_granule + settled) * SAMPLE_RATE // OPUS_RATE  # the same stretch of the timeline
    assert abs(integrated_lufs(joined[settled:], OPUS_RATE) - integrated_lufs(source[source_from:])) <= LOUDNESS_LU
    assert abs(integrated_lufs(whole, OPUS_RATE) - integrated_lufs(source)) <= LOUDNESS_LU
    assert clicks(whole, OPUS_RATE).count == 0 and clicks(joined[settled:], OPUS_RATE).count == 0


@needs_ffmpeg
def test_ffmpeg_plays_mp3_joined_on_a_chunks_first_frame_like_the_continuous_stream():
    source = station_audio()
    compressed = encode_all(Mp3Encoder(), chunks_of(source))
    whole = ffmpeg_decode(mp3_bytes(compressed), "mp3", SAMPLE_RATE)
    joined = ffmpeg_decode(mp3_bytes(compressed, JOIN_CHUNK), "mp3", SAMPLE_RATE)
    first_frame = sum(len(chunk.packets) for chunk in compressed[:JOIN_CHUNK])
    offset = first_frame * MP3_FRAME_SAMPLES
    assert len(joined) == len(whole) - offset
    settled = 3 * MP3_FRAME_SAMPLES  # the frames before the join held part of the first frames' bits
    assert np.array_equal(joined[settled:], whole[offset + settled:])
    delay = Mp3Encoder.encoder_delay
    assert abs(integrated_lufs(whole[delay:]) - integrated_lufs(source[:len(whole) - delay])) <= LOUDNESS_LU
    joined_from = offset - delay + settled  # the source frame the joined decode settles at
    assert abs(integrated_lufs(joined[settled:]) - integrated_lufs(source[joined_from:joined_from + len(joined)
                                                                          - settled])) <= LOUDNESS_LU
    assert clicks(whole[delay:]).count == 0 and clicks(joined[settled:]).count == 0


# ---- Ogg pages ----------------------------------------------------------------------------------


def reference_ogg_crc(data: bytes) -> int:
    """The Ogg CRC bit by bit: polynomial 0x04C11DB7, most significant bit first, no inversions."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def test_ogg_crc_matches_the_bitwise_definition():
    rng = random.Random(1)
    for size in (0, 1, 27, 255, 1000):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert ogg_crc(data) == reference_ogg_crc(data)
    assert ogg_crc(b"") == 0 and ogg_crc(b"OggS") != zlib.crc32(b"OggS")


@needs_ffmpeg
def test_ogg_crc_matches_the_pages_ffmpeg_writes(tmp_path):
    path = tmp_path / "tone.opus"
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-c:a", "libopus", str(path)], check=True, timeout=60)
    pages, rest = parse_pages(path.read_bytes())
    assert len(pages) >= 3 and rest == b""
    assert all(page.crc_ok for page in pages)


def test_ogg_opus_stream_pages():
    encoder = OpusEncoder()
    stream = OggOpusStream(0xA0B1C2D3, encoder.pre_skip, SAMPLE_RATE, comments=["TITLE=default"])
    compressed = encode_all(encoder, chunks_of(smooth_tones(30)), first_chunk_id=900)
    pages, rest = parse_pages(ogg_bytes(stream, compressed))
    assert rest == b"" and all(page.crc_ok for page in pages)
    assert {page.serial for page in pages} == {0xA0B1C2D3}
    assert [page.sequence for page in pages] == list(range(len(pages)))
    head, tags, *audio = pages
    assert head.flags == FLAG_FIRST and head.granule == 0
    assert head.body == struct.pack("<8sBBHIhB", b"OpusHead", 1, 2, 312, SAMPLE_RATE, 0, 0)
    assert tags.flags == 0 and tags.granule == 0 and tags.body.startswith(b"OpusTags")
    assert tags.body.endswith(struct.pack("<I", 1) + struct.pack("<I", 13) + b"TITLE=default")
    assert len(audio) == len(compressed)  # a chunk's ~1.6 kB of packets fit on one page
    assert [page.granule for page in audio] == [chunk.samples_end for chunk in compressed]
    assert page_packets(audio) == [packet for chunk in compressed for packet in chunk.packets]


def test_ogg_pages_carry_packets_larger_than_a_page():
    sizes = [70_000, 10, 255, 0, 255 * 254, 3]
    packets = [bytes([i]) * size for i, size in enumerate(sizes)]
    granules = list(np.cumsum([960] * len(packets)))
    pages, _ = parse_pages(b"".join(packet_pages(7, 2, packets, granules)))
    assert all(page.crc_ok and len(page.segments) <= 255 for page in pages)
    assert [page.sequence for page in pages] == list(range(2, 2 + len(pages)))
    assert page_packets(pages) == packets
    assert pages[0].granule == -1 and pages[1].flags & FLAG_CONTINUED  # no packet ends on the first page
    ends = [page.granule for page in pages if page.granule != -1]
    assert ends == sorted(ends) and ends[-1] == granules[-1]
    # a reader that starts on a continued page skips the partial packet
    assert page_packets(pages[1:]) == packets[1:]


# ---- the format=opus WebSocket frame -------------------------------------------------------------


def test_opus_frame_round_trips_and_shares_the_pcm_frame_header():
    encoder = OpusEncoder()
    stream = OggOpusStream(1, encoder.pre_skip, SAMPLE_RATE)
    chunks = chunks_of(smooth_tones(20))
    pool = AudioChunkPool(2)
    frame_packets, pages = [], []
    for i, pcm in enumerate(chunks):
        chunk_id, timestamp = 77_000 + i, 1_700_000_000.0 + i / 10
        compressed = encoder.encode(chunk_id, pcm)
        body = encode_opus_frame(chunk_id, timestamp, compressed.packets)
        assert body[:16] == pool.encode_chunk(chunk_id, timestamp, pcm).binary[:16]
        frame = decode_opus_frame(body)
        assert (frame.chunk_id, frame.timestamp, frame.packets) == (chunk_id, timestamp, compressed.packets)
        assert len(body) == 16 + sum(2 + len(packet) for packet in compressed.packets)
        frame_packets.extend(frame.packets)
        pages.append(stream.chunk_pages(compressed))
    # the packets a WebSocket listener gets are the packets of the Ogg stream
    assert page_packets(parse_pages(b"".join(pages))[0]) == frame_packets


def test_opus_frame_lengths_are_big_endian_and_bad_bodies_are_refused():
    body = encode_opus_frame(1, 2.0, [b"\x01" * 300, b"\x02"])
    assert body[16:18] == b"\x01\x2c" and body[318:320] == b"\x00\x01"
    assert decode_opus_frame(encode_opus_frame(5, 0.5, [])).packets == ()
    for bad in (body[:10], body[:17], body[:-1], body[:16] + b"\x00\x00"):
        with pytest.raises(ValueError):
            decode_opus_frame(bad)
    with pytest.raises(ValueError):
        encode_opus_frame(1, 2.0, [b""])


# ---- ICY metadata --------------------------------------------------------------------------------


def test_icy_metadata_block_layout():
    block = icy_metadata_block("Focus: D dorian")
    text = b"StreamTitle='Focus: D dorian';"
    assert block[0] == 2 and len(block) == 1 + 32
    assert block[1:] == text + b"\x00" * (32 - len(text))
    longest = icy_metadata_block("é" * 5000)
    assert longest[0] == 255 and len(longest) == 1 + 255 * 16
    assert longest[1:].rstrip(b"\x00").decode().startswith("StreamTitle='éé")  # cut on a character boundary


def test_icy_blocks_fall_at_exact_metaint_offsets_and_parse_back():
    metaint = 8192
    rng = random.Random(4)
    audio_pieces = [bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 417, 1672, 9000, 20000])))
                    for _ in range(60)]
    titles = ["first"] * 25 + ["second"] * 20 + ["third"] * 15
    listener = IcyInterleaver(metaint)
    sent = b"".join(bytes(piece) for audio, title in zip(audio_pieces, titles)
                    for piece in listener.interleave(audio, title))
    audio = b"".join(audio_pieces)

    # walk the bytes as a player does: metaint audio bytes, a length byte, that many 16-byte units
    position, audio_seen, blocks = 0, bytearray(), []
    while position < len(sent):
        take = min(metaint, len(sent) - position)
        audio_seen += sent[position:position + take]
        position += take
        if take < metaint:
            break
        units = sent[position]
        blocks.append(sent[position + 1:position + 1 + units * 16])
        position += 1 + units * 16
    assert bytes(audio_seen) == audio
    assert len(blocks) == len(audio) // metaint
    announced = [block.rstrip(b"\x00") for block in blocks if block]
    assert announced == [b"StreamTitle='first';", b"StreamTitle='second';", b"StreamTitle='third';"]

    # the client side, fed in arbitrary pieces
    demuxer = IcyDemuxer(metaint)
    received, announced_at = bytearray(), []
    position = 0
    while position < len(sent):
        step = rng.randrange(1, 5000)
        audio_part, titles_part = demuxer.feed(sent[position:position + step])
        received += audio_part
        announced_at += titles_part
        position += step
    assert bytes(received) == audio
    assert [title for _, title in announced_at] == ["first", "second", "third"]
    assert all(offset % metaint == 0 and offset > 0 for offset, _ in announced_at)
    # each title is announced at the first block after the audio sent with it began
    second_from = sum(len(piece) for piece in audio_pieces[:25])
    assert announced_at[1][0] == (second_from // metaint + 1) * metaint


def test_icy_listeners_share_audio_bytes_but_not_offsets():
    audio = bytes(range(256)) * 40
    early, late = IcyInterleaver(1000), IcyInterleaver(1000)
    assert late.interleave(audio[:1700], "t")[1] == icy_metadata_block("t")  # announced at byte 1000
    pieces = late.interleave(audio, "t")
    assert bytes(pieces[0]) == audio[:300] and pieces[1] == b"\x00"  # "t" was already announced
    assert any(isinstance(piece, memoryview) and piece.obj is audio for piece in pieces)  # no copy
    assert bytes(early.interleave(audio, "t")[0]) == audio[:1000]
    with pytest.raises(ValueError):
        IcyInterleaver(0)
