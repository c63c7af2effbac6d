"""Logic behind the actors, without Ray: SynthesisCore renders ahead; StationCore encodes once, on schedule."""

import asyncio
import base64
import json

import numpy as np
import pytest

from auralis_ray.actors.synthesis import SynthesisCore
from auralis_ray.config import load_config
from auralis_ray.core_settings import station_settings
from auralis_ray.music.params import StationParams
from auralis_ray.stream.station import StationCore
from auralis_ray.stream.protocol import CHUNK_BYTES, CHUNK_SECONDS
from auralis_ray.stream.schedule import publish_time

EPOCH = 1_000.0


def config_json(**overrides) -> str:
    return load_config(**overrides).model_dump_json()


def test_station_encodes_each_chunk_once_and_serves_by_id():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    pcm = np.arange(3 * CHUNK_BYTES // 2, dtype="<i2").tobytes()
    assert station.next_needed_chunk(publish_time(EPOCH, 18)) == 20
    assert station.ingest(20, pcm) == 23
    assert station.ingest(20, pcm) == 23  # a repeated push changes nothing
    assert station.pool.encoded_count == 3
    now = publish_time(EPOCH, 21)
    wires = station.fetch(19, horizon_chunks=1, now=now)
    assert [w[0] for w in wires] == [20, 21, 22]
    cid, ts, binary, head = wires[0]
    assert ts == publish_time(EPOCH, 20) and binary[16:] == pcm[:CHUNK_BYTES]
    message = json.loads(head + ',"buffer_depth":0,"current_tier":"normal"}')
    assert base64.b64decode(message["data"]) == pcm[:CHUNK_BYTES]
    assert station.fetch(19, horizon_chunks=0, now=now)[-1][0] == 21  # nothing past the horizon
    with pytest.raises(ValueError):
        station.ingest(30, b"\x00" * 100)


def test_station_refuses_a_push_from_a_replaced_timeline():
    """A block rendered for the old timeline, arriving after a restart, must not leave a hole."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    attach = station.next_needed_chunk(publish_time(EPOCH, 500))  # a restarted, empty station
    assert station.ingest(580, b"\x00" * CHUNK_BYTES * 10) == attach  # stale: far ahead, refused
    assert station.ring.latest_id is None and station.refused_pushes == 1
    assert station.ingest(attach, b"\x00" * CHUNK_BYTES * 10) == attach + 10
    assert station.ingest(attach + 30, b"\x00" * CHUNK_BYTES * 10) == attach + 10  # would leave a hole
    assert station.ingest(attach + 10, b"\x00" * CHUNK_BYTES * 10) == attach + 20


def test_station_accepts_every_attach_point_it_handed_out():
    """Station and synthesis starting together both ask; whichever timeline synthesis keeps is accepted."""
    station = StationCore("s", EPOCH, station_settings(load_config()))
    first = station.next_needed_chunk(publish_time(EPOCH, 100))  # the station announcing itself
    second = station.next_needed_chunk(publish_time(EPOCH, 115))  # synthesis asking after its start
    assert second > first
    assert station.ingest(first, b"\x00" * CHUNK_BYTES * 10) == first + 10


def test_station_asks_synthesis_to_continue_past_its_live_edge():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    assert station.next_needed_chunk(now) == 502  # empty after a restart: just past live
    station.ingest(502, b"\x00" * CHUNK_BYTES * 40)
    assert station.next_needed_chunk(now) == 532  # 10 chunks before the end held: crossfaded in
    station.fetch(501, horizon_chunks=33, now=now)  # a replica took up to 533
    assert station.next_needed_chunk(now) == 542  # nothing left to crossfade over: a plain continuation
    info = station.info(now + 3 * CHUNK_SECONDS)
    assert info["ready"] and info["lookahead_chunks"] == 541 - 503


def test_synthesis_renders_all_stations_ahead_in_one_call_and_applies_changes_between_renders():
    core = SynthesisCore(config_json(buffer={"lookahead_chunks": 20, "replica_prefetch_chunks": 5,
                                             "ready_ahead_chunks": 2, "replica_fetch_interval_sec": 0.2,
                                             "restart_crossfade_chunks": 5},
                                     gpu={"render_block_chunks": 10}))
    now = publish_time(EPOCH, 100)
    core.attach("a", EPOCH, 102, StationParams.from_preset("focus"), 1, handle=None)
    core.attach("b", EPOCH, 102, StationParams.from_preset("sleep"), 2, handle=None)
    assert not core.timelines  # queued until the render loop applies them
    core.apply_commands()
    assert core.needs_render(now) and core.lead_chunks(now) == {"a": 1, "b": 1}
    rendered = asyncio.run(core.render())
    assert {name: first for name, (first, _) in rendered.items()} == {"a": 102, "b": 102}
    assert all(len(pcm) == 10 * CHUNK_BYTES for _, pcm in rendered.values())
    for name, (_, pcm) in rendered.items():  # attached 10 s into the timeline: sounding from its first chunk
        first_chunk = np.frombuffer(pcm[:CHUNK_BYTES], "<i2").astype(np.float64) / 32768.0
        assert np.sqrt(np.mean(first_chunk ** 2)) > 0.01, name
    assert core.engine.render_count == 1 and core.blocks_rendered == 1
    second = asyncio.run(core.render())
    assert second["a"][0] == 112 and not core.needs_render(now)
    core.set_params("a", StationParams.from_preset("focus").updated(key="E"))
    core.apply_commands()
    assert core.engine.stations() == ["a", "b"]


def test_a_restarted_timeline_is_crossfaded_into_the_held_audio():
    station = StationCore("s", EPOCH, station_settings(load_config()))
    now = publish_time(EPOCH, 500)
    start = station.next_needed_chunk(now)
    old = np.full((40 * CHUNK_BYTES) // 2, 8000, dtype="<i2").tobytes()
    station.ingest(start, old)  # held to start + 40
    point = station.next_needed_chunk(now)  # synthesis restarted
    assert point == start + 30
    new = np.full((20 * CHUNK_BYTES) // 2, -8000, dtype="<i2").tobytes()
    assert station.ingest(point, new) == start + 50
    pcm = np.frombuffer(b"".join(station.ring.get(c).pcm for c in range(start, start + 50)), "<i2")
    frames = pcm.reshape(-1, 2)[:, 0].astype(float)
    fade = frames[30 * 4410:40 * 4410]
    assert frames[30 * 4410 - 1] == 8000 and frames[40 * 4410] == -8000
    assert fade[0] > 7900 and fade[-1] < -7900 and np.all(np.diff(fade) <= 0)  # smooth, no step
    assert np.max(np.abs(np.diff(frames))) < 10  # the largest sample step anywhere (a cut: 16000)
    assert station.crossfades == 1
    binary = station.ring.get(start + 35).binary
    assert binary[16:] == pcm[35 * CHUNK_BYTES // 2:36 * CHUNK_BYTES // 2].tobytes()  # re-encoded
    assert station.ingest(point, new) == start + 50 and station.crossfades == 1  # a retry: nothing more
