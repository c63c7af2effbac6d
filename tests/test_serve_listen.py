"""The replica's compressed delivery without Ray: the `/listen/` routes (serve/http_stream.py), the
WebSocket `opus` format and now-playing (serve/hub.py, serve/websocket.py, serve/app.py), served by a
real uvicorn around the ingress app, fed by a fake station actor that encodes like the real one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import uvicorn
import websockets

from auralis_ray.config import load_config
from auralis_ray.monitor.metrics import PerformanceMetrics
from auralis_ray.serve import state
from auralis_ray.serve.app import app
from auralis_ray.serve.http_stream import send_buffer_bytes
from auralis_ray.serve.hub import ListenerHub
from auralis_ray.serve.lifecycle import ReplicaLifecycle
from auralis_ray.serve.local import free_port
from auralis_ray.stream import protocol as p
from auralis_ray.stream.codecs import CodecSettings, IcyDemuxer, decode_opus_frame, page_packets, parse_pages
from auralis_ray.stream.http_listener import StreamFormat
from auralis_ray.stream.pool import AudioChunkPool, EncodedChunk
from auralis_ray.stream.schedule import live_chunk_id, publish_time
from stream_reading import read_for
from waiting import wait_until_async

pytestmark = pytest.mark.realtime

SECTION_CHUNKS = 25  # the fake station starts a new section every 2.5 s


def tone(chunk_id: int) -> bytes:
    t = (np.arange(p.FRAMES_PER_CHUNK) + chunk_id * p.FRAMES_PER_CHUNK) / p.SAMPLE_RATE
    return np.repeat(np.round(6000 * np.sin(2 * np.pi * 440 * t)).astype("<i2"), 2).tobytes()


def section(number: int) -> dict:
    return {"preset": "focus", "key": "D", "mode": "dorian", "bpm": 72.0, "section": "drift",
            "section_number": number, "since_chunk_id": number * SECTION_CHUNKS, "station": "s",
            "stream_title": f"s - Focus: D dorian, 72 bpm, drift (section {number})"}


class Method:
    def __init__(self, answer):
        self.answer = answer

    def remote(self, *args):
        return self.answer(*args)


class CompressingStation:
    """A station actor: a live timeline started 5 s ago, whose chunks get compressed forms (in order)
    when a fetch asks for them, and the sections it plays, as StationActor.fetch answers. It keeps
    what each fetch asked for (`asked_compressed`)."""

    def __init__(self):
        self.epoch = round(time.time() - 5.0, 3)
        self.pool = AudioChunkPool(2, codecs=CodecSettings(), station="s")
        self.chunks: dict[int, EncodedChunk] = {}
        self.asked_compressed: list[bool] = []
        self.fetch = Method(self._fetch)
        self.info = Method(self._info)

    def _chunk(self, chunk_id: int, compressed: bool) -> tuple:
        chunk = self.chunks.get(chunk_id)
        if chunk is None:
            chunk = self.chunks[chunk_id] = self.pool.encode_chunk(chunk_id, publish_time(self.epoch, chunk_id),
                                                                   tone(chunk_id))
        if compressed and chunk.compressed is None and self.pool.can_compress(chunk_id):
            self.pool.compress(chunk)
        return chunk.to_transfer()

    async def _fetch(self, station: str, after: int, prefetch: int, compressed: bool = True) -> dict:
        self.asked_compressed.append(compressed)
        live = live_chunk_id(self.epoch, time.time())
        first = max(after + 1, live - 20, min(self.chunks, default=0))
        chunks = [self._chunk(cid, compressed) for cid in range(first, live + prefetch + 1)]
        last = chunks[-1][0] if chunks else live
        sections = [{**section(n), "since": publish_time(self.epoch, n * SECTION_CHUNKS)}
                    for n in range(min(first, live) // SECTION_CHUNKS, last // SECTION_CHUNKS + 1)]
        return {"epoch": self.epoch, "chunks": chunks, "now_playing": sections}

    async def _info(self, station: str) -> dict:
        return {"name": "s", "params": {"bpm": 72}}


class SilentStation:
    """A station actor that is still starting: its fetches time out, and it has said nothing yet."""

    def __init__(self):
        self.fetch = Method(self._never)
        self.info = Method(self._never)

    async def _never(self, *args):
        await asyncio.Event().wait()


@dataclass
class Replica:
    config: object
    hub: ListenerHub
    lifecycle: ReplicaLifecycle


@dataclass
class Served:
    replica: Replica
    url: str

    @property
    def hub(self) -> ListenerHub:
        return self.replica.hub


async def serve(http: str, station=None, **concurrency):
    config = load_config(concurrency={"max_concurrent_clients": 4, "drain_timeout_sec": 1.0,
                                      "station_fetch_timeout_sec": 0.5, **concurrency},
                         buffer={"ready_ahead_chunks": 5})
    hub = ListenerHub(config, {"s": station or CompressingStation()}, PerformanceMetrics("ingress"))
    hub.start()
    if station is None:
        assert await hub.feed("s").wait_for_audio(5.0)
    state.replica = Replica(config, hub, ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=http, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    await wait_until_async(lambda: server.started, 5.0, "the server to start")
    return server, task, Served(state.replica, f"http://127.0.0.1:{port}")


@contextlib.asynccontextmanager
async def running(http: str, station=None):
    server, task, served = await serve(http, station)
    try:
        yield served
    finally:
        server.should_exit = True
        await task
        await served.hub.stop()
        state.replica = None


@pytest.fixture
async def served():
    """The ingress app on uvicorn's httptools protocol, as Serve runs it: direct writes."""
    async with running("httptools") as served:
        yield served


@pytest.fixture
async def served_h11():
    """The same app where the socket is not reachable (uvicorn's h11 protocol): the ASGI `send` path."""
    async with running("h11") as served:
        yield served


def http_details(hub: ListenerHub) -> list[dict]:
    return [d for d in hub.listener_details() if d.get("http")]


# ---- HTTP streams ------------------------------------------------------------------------------------

async def test_an_ogg_listener_gets_header_pages_then_real_time_pages_written_straight_to_its_socket(served):
    async with httpx.AsyncClient(base_url=served.url) as http:
        async with http.stream("GET", "/listen/s.opus") as response:
            assert response.status_code == 200
            headers = response.headers
            assert headers["content-type"] == "audio/ogg" and headers["cache-control"] == "no-store"
            assert headers["access-control-allow-origin"] == "*" and headers["icy-name"] == "Auralis s"
            started = time.monotonic()  # the head has come: every byte of the body is written from now on
            details = await wait_until_async(lambda: http_details(served.hub), 2.0, "the listener to register")
            assert details[0]["direct_writes"] and details[0]["format"] == "opus"
            data = await read_for(response, 3.0)
            elapsed = time.monotonic() - started
    pages, _ = parse_pages(data)
    assert pages[0].body.startswith(b"OpusHead") and pages[1].body.startswith(b"OpusTags")
    assert all(page.crc_ok for page in pages)
    assert [page.sequence for page in pages[2:]] == list(range(pages[2].sequence, pages[2].sequence + len(pages) - 2))
    chunks = len(page_packets(pages[2:])) / 5
    assert 10 + 10 * (elapsed - 0.5) <= chunks <= 10 + 10 * elapsed + 2, "a burst of 10 chunks, then real time"
    await wait_until_async(lambda: served.hub.listener_count == 0, 2.0, "the listener to be forgotten")


async def test_compressed_forms_are_asked_for_only_while_a_compressed_listener_listens(served):
    station = served.hub.feed("s").station
    assert station.asked_compressed and not any(station.asked_compressed), "nobody listens to them yet"
    async with httpx.AsyncClient(base_url=served.url) as http:
        async with http.stream("GET", "/listen/s.mp3") as response:
            data = await read_for(response, 1.5)  # the burst, then a fetch interval at least
            asked = list(station.asked_compressed)
    assert data[:2] in (b"\xff\xfb", b"\xff\xfa"), "compressed audio from the first byte"
    assert asked[-1], "the replica's fetches ask for compressed forms while the listener listens"
    await wait_until_async(lambda: served.hub.listener_count == 0, 2.0, "the listener to be forgotten")
    count = len(station.asked_compressed)
    await wait_until_async(lambda: len(station.asked_compressed) > count, 3.0, "the next fetch")
    assert not station.asked_compressed[-1], "and no longer once it left"


async def test_an_mp3_listener_with_icy_metadata_hears_the_title_change_with_the_section(served):
    async with httpx.AsyncClient(base_url=served.url) as http:
        async with http.stream("GET", "/listen/s.mp3", headers={"Icy-MetaData": "1"}) as response:
            assert response.headers["content-type"] == "audio/mpeg"
            metaint = int(response.headers["icy-metaint"])
            demuxer, titles, audio = IcyDemuxer(metaint), [], bytearray()
            async with asyncio.timeout(10):  # two sections of 2.5 s
                async for piece in response.aiter_raw():
                    more, announced = demuxer.feed(piece)
                    audio += more
                    titles += [title for _, title in announced]
                    if len(titles) >= 2:
                        break
    assert audio[:2] in (b"\xff\xfb", b"\xff\xfa"), "it starts on a frame"
    first, second = (int(title.rsplit(" ", 1)[1].rstrip(")")) for title in titles[:2])
    assert second == first + 1 and titles[0].startswith("s - Focus: D dorian")


async def test_head_playlists_and_refusals(served):
    station = served.hub.feed("s").station
    async with httpx.AsyncClient(base_url=served.url) as http:
        asked = len(station.asked_compressed)
        head = await http.head("/listen/s.mp3")
        assert head.status_code == 200 and head.headers["content-type"] == "audio/mpeg"
        assert head.headers["cache-control"] == "no-store" and head.headers["access-control-allow-origin"] == "*"
        assert served.hub.listener_count == 0, "HEAD is no listener"
        assert not any(station.asked_compressed[asked:]), "HEAD does not wake the station's encoders"
        preflight = await http.options("/listen/s.mp3", headers={
            "origin": "https://player.example", "access-control-request-method": "GET",
            "access-control-request-headers": "icy-metadata"})
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
        assert "icy-metadata" in preflight.headers["access-control-allow-headers"], "a page elsewhere may ask for ICY"
        m3u = await http.get("/listen/s.m3u", headers={"host": "radio.example:8000"})
        assert m3u.headers["content-type"] == "audio/x-mpegurl" and m3u.headers["cache-control"] == "no-store"
        assert [line for line in m3u.text.splitlines() if not line.startswith("#")] == [
            "http://radio.example:8000/listen/s.mp3", "http://radio.example:8000/listen/s.opus"]
        pls = await http.get("/listen/s.pls", headers={"host": "radio.example:8000"})
        assert pls.headers["content-type"] == "audio/x-scpls"
        assert "File1=http://radio.example:8000/listen/s.mp3" in pls.text and "NumberOfEntries=2" in pls.text
        unknown = await http.get("/listen/nope.mp3")
        assert unknown.status_code == 404 and unknown.json() == {"error": "unknown station 'nope'"}
        assert (await http.get("/listen/s.aac")).status_code == 404
        post = await http.post("/listen/s.mp3")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_http_listeners_count_toward_capacity_then_get_503_with_retry_after(served):
    async with httpx.AsyncClient(base_url=served.url) as http:
        async with http.stream("GET", "/listen/s.mp3") as one, http.stream("GET", "/listen/s.opus") as two:
            async with websockets.connect(f"{served.url.replace('http', 'ws')}/ws/audio/w1?station=s") as ws:
                await ws.recv()
                async with http.stream("GET", "/listen/s.mp3") as three:
                    assert {one.status_code, two.status_code, three.status_code} == {200}
                    full = await http.get("/listen/s.opus")
                    assert full.status_code == 503 and int(full.headers["retry-after"]) > 0
                    assert full.json()["error"].startswith("server at capacity")
                    async with websockets.connect(f"{served.url.replace('http', 'ws')}/ws/audio/w2?station=s") as w2:
                        refused = json.loads(await w2.recv())
                        await w2.wait_closed()
                    assert refused["error_code"] == "SERVER_OVERLOAD" and w2.close_code == p.CloseCode.TRY_AGAIN_LATER


def test_an_http_streams_kernel_send_buffer_is_one_second_of_it():
    encoding = load_config().encoding.model_copy(update={"mp3_bitrate_kbps": 320, "opus_bitrate_kbps": 6})
    assert send_buffer_bytes(encoding, StreamFormat.MP3) == 40_000
    assert send_buffer_bytes(encoding, StreamFormat.OGG_OPUS) == 4096  # the least a socket is given


async def test_a_listener_that_stops_reading_is_dropped_and_another_keeps_real_time(served):
    host, port = served.url.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    await asyncio.get_running_loop().sock_connect(stalled, (host, int(port)))
    await asyncio.get_running_loop().sock_sendall(stalled, b"GET /listen/s.mp3 HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        async with httpx.AsyncClient(base_url=served.url) as http:
            async with http.stream("GET", "/listen/s.opus") as response:
                started = time.monotonic()
                data = bytearray()

                async def stalled_gone():
                    async for piece in response.aiter_raw():  # the good listener reads on meanwhile
                        data.extend(piece)
                        if len(http_details(served.hub)) == 1:
                            return True
                    return False

                assert await asyncio.wait_for(stalled_gone(), 60.0)
                elapsed = time.monotonic() - started
    finally:
        stalled.close()
    pages, _ = parse_pages(bytes(data))
    assert len(page_packets(pages[2:])) / 5 >= 10 + 10 * (elapsed - 0.5), "the other listener kept real time"
    assert served.hub.metrics.snapshot()["counters"]["websocket_send_errors_total"]


async def test_a_drain_ends_the_http_streams_at_its_end_and_refuses_new_ones(served):
    async with httpx.AsyncClient(base_url=served.url) as http:
        async with http.stream("GET", "/listen/s.opus") as response:
            started = time.monotonic()  # before the drain begins
            draining = asyncio.create_task(served.replica.lifecycle.drain("planned shutdown", 0.5))
            await wait_until_async(lambda: served.replica.lifecycle.draining, 1.0, "the drain to begin")
            refused = await http.get("/listen/s.mp3")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            data = b"".join([piece async for piece in response.aiter_raw()])  # ends without an error
            assert time.monotonic() - started >= 0.45, "the stream goes on through the 0.5 s drain period"
    assert await draining == 1
    pages, rest = parse_pages(data)
    assert rest == b"" and len(pages) > 2


async def test_without_a_reachable_socket_the_stream_goes_through_the_asgi_send(served_h11):
    async with httpx.AsyncClient(base_url=served_h11.url) as http:
        async with http.stream("GET", "/listen/s.mp3") as response:
            details = await wait_until_async(lambda: http_details(served_h11.hub), 2.0, "the listener")
            assert not details[0]["direct_writes"]
            data = await read_for(response, 1.5)
    assert data[:2] in (b"\xff\xfb", b"\xff\xfa") and len(data) > 16_000, "the burst and real time"


# ---- now playing and the WebSocket opus format -----------------------------------------------------

async def test_now_playing_route_and_websocket_opus_listener(served):
    async with httpx.AsyncClient(base_url=served.url) as http:
        now = (await http.get("/api/stations/s/now")).json()
        assert now["station"] == "s" and now["since_chunk_id"] % SECTION_CHUNKS == 0 and now["key"] == "D"
        assert (await http.get("/api/stations/nope/now")).status_code == 404
    url = f"{served.url.replace('http', 'ws')}/ws/audio/o1?station=s&format=opus"
    async with websockets.connect(url) as ws:
        established = json.loads(await ws.recv())
        assert established["format"] == "opus" and established["codec"]["bitrate"] == 128_000
        playing = json.loads(await ws.recv())
        assert playing["type"] == "now_playing" and playing["section_number"] >= now["section_number"]
        frames, announced = [], []
        while len(announced) < 1:
            message = await asyncio.wait_for(ws.recv(), 5)  # a section lasts 2.5 s
            if isinstance(message, bytes):
                frames.append(decode_opus_frame(message))
            else:
                announced.append((json.loads(message), frames[-1].chunk_id))
    change, before = announced[0]
    assert change["type"] == "now_playing" and change["section_number"] == playing["section_number"] + 1
    assert before == change["since_chunk_id"] - 1, f"announced right before the section's first chunk, not {before}"
    ids = [frame.chunk_id for frame in frames]
    assert ids == list(range(ids[0], ids[0] + len(ids))) and all(len(frame.packets) == 5 for frame in frames[1:])


async def test_unknown_paths_and_methods_get_json_errors_and_now_playing_errors_are_cors_readable(served):
    async with httpx.AsyncClient(base_url=served.url) as http:
        missing = await http.get("/api/nothing-here")
        assert missing.status_code == 404 and missing.json() == {"error": "not found: GET /api/nothing-here"}
        wrong = await http.get("/api/admin/drain")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "GET" in wrong.json()["error"]
        unknown = await http.get("/api/stations/nope/now")
        assert unknown.status_code == 404 and unknown.headers["access-control-allow-origin"] == "*"
        assert unknown.headers["cache-control"] == "no-store"


async def test_before_its_station_has_audio_a_replica_is_not_ready_and_says_so_to_every_kind_of_listener():
    async with running("httptools", SilentStation()) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 503
            now = await http.get("/api/stations/s/now")
            assert now.status_code == 503 and now.headers["retry-after"] == "1"
            assert now.headers["access-control-allow-origin"] == "*"
            stream = await http.get("/listen/s.mp3")
            assert stream.status_code == 503 and stream.json()["error"] == "the station has no audio yet"
            assert int(stream.headers["retry-after"]) > 0
        async with websockets.connect(f"{served.url.replace('http', 'ws')}/ws/audio/early?station=s") as ws:
            refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await asyncio.wait_for(ws.wait_closed(), 10)
        assert refused["error_code"] == "SERVER_OVERLOAD" and "no audio yet" in refused["error_message"]
        assert ws.close_code == p.CloseCode.TRY_AGAIN_LATER
        assert served.hub.listener_count == 0
