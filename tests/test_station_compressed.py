"""A station's compressed streams through its timeline's restarts, decoded with PyAV.

The station encodes Opus and MP3 from the PCM it holds, once per chunk, after any crossfade: so a
restarted synthesis timeline is crossfaded in PCM and the compressed streams carry that PCM with no
seam of their own; a restarted station actor starts a new compressed stream (a chained Ogg stream)."""

import functools
import io

import av
import numpy as np
import pytest
from scipy import signal

from audio_checks import clicks
from auralis_ray.config import ConfigError, GPUConfig, load_config
from auralis_ray.core_settings import batch_render_config, station_settings
from auralis_ray.music.params import StationParams
from auralis_ray.stream.codecs import Mp3Encoder, OpusEncoder, decode_opus_frame, page_packets, parse_pages
from auralis_ray.stream.codecs.encoders import DEFAULT_BITRATE, DEFAULT_MP3_QUALITY, DEFAULT_OPUS_COMPLEXITY
from auralis_ray.stream.pool import EncodedChunk
from auralis_ray.stream.protocol import CHUNK_BYTES, FRAMES_PER_CHUNK, SAMPLE_RATE
from auralis_ray.stream.schedule import publish_time
from auralis_ray.stream.station import StationCore
from auralis_ray.synth.engine import OptimizedSynthesisEngine

EPOCH = 1_000_000.0
OPUS_RATE = 48_000
OPUS_CHUNK = OPUS_RATE // 10
BLOCK_CHUNKS = 20
ENGINE = batch_render_config(GPUConfig(device="cpu"))


def render_into(station: StationCore, first_chunk_id: int, blocks: int) -> None:
    """A synthesis timeline attached at `first_chunk_id`, pushing `blocks` blocks of 2 s."""
    engine = OptimizedSynthesisEngine(ENGINE, device="cpu", block_frames=BLOCK_CHUNKS * FRAMES_PER_CHUNK)
    engine.add_station(station.name, StationParams.from_preset("focus"), 1,
                       start_frame=first_chunk_id * FRAMES_PER_CHUNK)
    for block in range(blocks):
        station.ingest(first_chunk_id + BLOCK_CHUNKS * block, engine.render_block()[station.name].tobytes())


def ogg_stream(chunks: list[EncodedChunk]) -> bytes:
    """What an HTTP Ogg listener receives: header pages first, and again wherever a new stream starts."""
    data, header = bytearray(), None
    for chunk in chunks:
        if chunk.compressed.ogg_header != header:
            header = chunk.compressed.ogg_header
            data += header
        data += chunk.compressed.ogg_pages
    return bytes(data)


def decode(data: bytes, container: str) -> np.ndarray:
    with av.open(io.BytesIO(data), format=container) as source:
        frames = list(source.decode(audio=0))
    return np.concatenate([frame.to_ndarray() for frame in frames], axis=1).T.astype(np.float64)


def pcm_of(chunks: list[EncodedChunk]) -> np.ndarray:
    return np.frombuffer(b"".join(chunk.pcm for chunk in chunks), "<i2").reshape(-1, 2)


@functools.lru_cache(maxsize=1)
def through_a_synthesis_restart() -> tuple[list[EncodedChunk], int, int]:
    """A replica's view of a station whose synthesis restarts: the chunks it fetched, oldest first, the
    first crossfaded chunk and the newest chunk fixed when the new timeline arrived."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 100)
    first = station.next_needed_chunk(now)
    render_into(station, first, 3)
    wires = station.fetch(first - 1, horizon_chunks=30, now=now)  # the replica prefetches 3 s
    fixed_before = station.fixed_upto
    point = station.next_needed_chunk(now)  # synthesis restarts here
    render_into(station, point, 1)
    assert station.crossfades == 1 and point > fixed_before
    wires += station.fetch(wires[-1][0], horizon_chunks=100, now=now)
    return [EncodedChunk.from_transfer(wire) for wire in wires], point - first, fixed_before - first


def test_the_crossfade_is_encoded_once_as_pcm_so_opus_and_mp3_carry_it_without_a_seam():
    chunks, crossfade_at, fixed = through_a_synthesis_restart()
    assert [c.chunk_id for c in chunks] == list(range(chunks[0].chunk_id, chunks[0].chunk_id + 70))
    pcm = pcm_of(chunks)
    assert clicks(pcm).count == 0  # the PCM's own crossfade has no click
    # one encoder along the final PCM: exactly what a single pass over the crossfaded audio gives,
    # although the chunks before the crossfade were encoded (and fetched) before it happened
    opus, mp3 = OpusEncoder(), Mp3Encoder()
    for chunk in chunks:
        assert decode_opus_frame(chunk.compressed.opus_frame).packets == opus.encode(chunk.chunk_id, chunk.pcm).packets
        assert chunk.compressed.mp3 == mp3.encode(chunk.chunk_id, chunk.pcm).payload
    assert fixed < crossfade_at
    ogg = ogg_stream(chunks)
    pages, _ = parse_pages(ogg)
    assert page_packets(pages)[2:] == [p for c in chunks for p in decode_opus_frame(c.compressed.opus_frame).packets]
    decoded = decode(ogg, "ogg")
    assert clicks(decoded, OPUS_RATE).count == 0
    # the codec's error around the crossfade is the codec's error anywhere else
    reference = signal.resample_poly(pcm / 32768.0, OPUS_RATE // 300, SAMPLE_RATE // 300, axis=0)
    n = min(len(decoded), len(reference))
    error = np.abs(decoded[:n] - reference[:n]).max(axis=1)
    blend = slice(crossfade_at * OPUS_CHUNK, (crossfade_at + 10) * OPUS_CHUNK)
    elsewhere = np.r_[error[OPUS_CHUNK:blend.start], error[blend.stop:n - OPUS_CHUNK]]
    assert np.sqrt(np.mean(error[blend] ** 2)) <= 1.5 * np.sqrt(np.mean(elsewhere ** 2))
    assert error[blend].max() <= 1.5 * elsewhere.max()
    mp3_decoded = decode(b"".join(c.compressed.mp3 for c in chunks), "mp3")
    assert clicks(mp3_decoded[Mp3Encoder.encoder_delay:]).count == 0


def test_a_restarted_station_actor_starts_a_chained_ogg_stream_that_decoders_follow():
    """The replica plays what it prefetched from the old actor, then the restarted actor's chunks: a new
    compressed stream (new encoders, new Ogg serial) at the same cut where the PCM changes timeline."""
    old = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 100)
    start = old.next_needed_chunk(now)
    render_into(old, start, 3)
    held = [EncodedChunk.from_transfer(w) for w in old.fetch(start - 1, horizon_chunks=30, now=now)]
    restarted = StationCore("s", EPOCH, station_settings(load_config()))  # the actor restarts 1 s later
    render_into(restarted, restarted.next_needed_chunk(publish_time(EPOCH, 110)), 3)
    after = [EncodedChunk.from_transfer(w)
             for w in restarted.fetch(held[-1].chunk_id, horizon_chunks=30, now=publish_time(EPOCH, 112))]
    assert after[0].chunk_id == held[-1].chunk_id + 1
    assert after[0].compressed.ogg_serial != held[0].compressed.ogg_serial
    assert {c.compressed.ogg_header for c in after} == {after[0].compressed.ogg_header}
    chunks = held + after
    pcm = pcm_of(chunks)
    cut = clicks(pcm).positions / FRAMES_PER_CHUNK  # the PCM's own cut between the two timelines
    assert len(cut) and np.all(np.abs(cut - len(held)) < 0.1)
    decoded = decode(ogg_stream(chunks), "ogg")
    # the old encoders' last few milliseconds are lost with the old actor; everything else plays
    assert 0 <= len(chunks) * OPUS_CHUNK - len(decoded) < OPUS_CHUNK // 2
    assert np.all(np.abs(clicks(decoded, OPUS_RATE).positions / OPUS_CHUNK - len(held)) < 1)  # at the cut only
    mp3_decoded = decode(b"".join(c.compressed.mp3 for c in chunks), "mp3")
    assert np.all(np.abs(clicks(mp3_decoded).positions / FRAMES_PER_CHUNK - len(held)) < 1)


def test_the_encoding_settings_reach_every_stations_encoders():
    config = load_config(encoding={"opus_bitrate_kbps": 64, "mp3_bitrate_kbps": 96, "opus_complexity": 3,
                                   "mp3_quality": 5})
    station = StationCore("s", EPOCH, station_settings(config))
    assert (station.pool.codecs.opus_bitrate, station.pool.codecs.mp3_bitrate) == (64_000, 96_000)
    assert (station.pool.codecs.opus_complexity, station.pool.codecs.mp3_quality) == (3, 5)
    first = station.next_needed_chunk(publish_time(EPOCH, 100))
    tone = np.sin(2 * np.pi * 440 * np.arange(40 * FRAMES_PER_CHUNK) / SAMPLE_RATE) * 8000
    station.ingest(first, np.repeat(tone, 2).astype("<i2").tobytes())
    chunks = [EncodedChunk.from_transfer(w) for w in station.fetch(first - 1, 60, publish_time(EPOCH, 100))]
    assert len(chunks) == 40 and len(chunks[0].pcm) == CHUNK_BYTES
    mp3_kbps = sum(len(c.compressed.mp3) for c in chunks[1:]) * 8 / (len(chunks) - 1) / 100
    assert 90 <= mp3_kbps <= 102
    opus_kbps = sum(len(p) for c in chunks[1:] for p in decode_opus_frame(c.compressed.opus_frame).packets) * 8 / 3900
    assert opus_kbps <= 70


@pytest.mark.parametrize("setting, value", [("mp3_bitrate_kbps", 100), ("opus_bitrate_kbps", 600),
                                            ("opus_complexity", 11), ("mp3_quality", -1)])
def test_a_bad_encoding_setting_stops_the_start_naming_it(setting, value):
    with pytest.raises(ConfigError, match=f"encoding.{setting}"):
        load_config(encoding={setting: value})


def test_the_encoders_defaults_are_the_configurations():
    encoding = load_config().encoding
    assert (encoding.opus_bitrate_kbps * 1000, encoding.opus_complexity) == (DEFAULT_BITRATE, DEFAULT_OPUS_COMPLEXITY)
    assert (encoding.mp3_bitrate_kbps * 1000, encoding.mp3_quality) == (DEFAULT_BITRATE, DEFAULT_MP3_QUALITY)
