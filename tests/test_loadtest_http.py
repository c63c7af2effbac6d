"""The HTTP stream listener: response framing, audio clocks, its record, and runs against local servers."""

import asyncio
import os
import time

import pytest

from auralis_ray.stream.codecs import CodecSettings, CompressedStream, Mp3Encoder
from auralis_ray.tools.loadtest.audioclock import (Mp3Clock, OggOpusClock, StreamFormatError, mp3_bitrate,
                                                   opus_packet_samples)
from auralis_ray.tools.loadtest.baseline import tone_chunk
from auralis_ray.tools.loadtest.client import run_loadtest_async
from auralis_ray.tools.loadtest.config import LoadTestConfig
from auralis_ray.tools.loadtest.http_session import HttpListenerSession
from auralis_ray.tools.loadtest.httpbody import ChunkedBody, HttpStreamError, StreamResponse
from auralis_ray.tools.loadtest.report import build_report, format_report
from auralis_ray.tools.loadtest.stalls import StallDetector

pytestmark = pytest.mark.realtime

TONE = tone_chunk()


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.fixture(scope="module")
def mp3_chunks() -> list[bytes]:
    """40 chunks (4 s) of the tone as the project's MP3 encoder makes them: whole frames per chunk."""
    encoder = Mp3Encoder()
    return [encoder.encode(k, TONE).payload for k in range(40)]


@pytest.fixture(scope="module")
def compressed() -> list:
    stream = CompressedStream("test", 0, CodecSettings())
    return [stream.encode(k, k * 0.1, TONE) for k in range(50)]


# -- HTTP framing -----------------------------------------------------------------------------


def test_chunked_body_gives_the_same_bytes_however_the_reads_split_it():
    payload = [b"a" * 300, b"b" * 17, b"c" * 4096]
    wire = b"".join(b"%x;ext=1\r\n" % len(p) + p + b"\r\n" for p in payload) + b"0\r\nx-trailer: 1\r\n\r\n"
    for size in (1, 2, 7, 100, len(wire)):
        body = ChunkedBody()
        out = b"".join(piece for data in _pieces(wire, size) for piece in body.feed(data))
        assert out == b"".join(payload) and body.complete, size
    for bad in (b"zz\r\n", b"3\r\nabcX\r\n"):
        with pytest.raises(HttpStreamError):
            ChunkedBody().feed(bad)
    with pytest.raises(HttpStreamError):
        ChunkedBody().feed(b"1" * 2000)  # a size line without end


def test_stream_response_parses_the_head_then_frames_the_body():
    response = StreamResponse("h:8000", "/listen/a.mp3")
    assert response.request.startswith(b"GET /listen/a.mp3 HTTP/1.1\r\nhost: h:8000\r\n".replace(b"host", b"Host"))
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nConnection: close\r\n\r\nxyz"
    body = [response.feed(data) for data in _pieces(wire, 10)]
    assert response.head.status == 200 and response.head.headers["content-type"] == "audio/mpeg"
    assert b"".join(p for pieces in body for p in pieces) == b"xyz" and not response.complete
    assert response.feed(b"more") == [b"more"]

    missing = StreamResponse("h", "/listen/x.mp3")
    assert missing.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\n{}\n\nextra") == [b"{}\n\n"]
    assert missing.head.status == 404 and missing.complete
    with pytest.raises(HttpStreamError):
        StreamResponse("h", "/").feed(b"ICY 200 OK\r\n\r\n")


# -- audio clocks ------------------------------------------------------------------------------


def test_mp3_clock_times_bytes_at_the_first_frame_bitrate(mp3_chunks):
    stream = b"".join(mp3_chunks[10:])
    clock = Mp3Clock()
    seconds = sum(clock.feed(piece) for piece in _pieces(stream, 3))  # the header arrives in pieces
    assert clock.bitrate == 128_000
    assert seconds == pytest.approx(len(stream) * 8 / 128_000)
    assert seconds == pytest.approx(3.0, abs=0.03)  # 30 chunks, give or take a frame
    low = Mp3Encoder(bitrate=64_000)
    assert mp3_bitrate(b"".join(low.encode(k, TONE).payload for k in range(3))) == 64_000
    for bad in (b"\x00" * 4, stream[1:5], b"\xff\xfb\x00\x00", b"\xff\xfb\xf0\x00"):  # no sync, free, invalid
        with pytest.raises(StreamFormatError):
            Mp3Clock().feed(bad)


def test_mp3_clock_resyncs_on_a_confirmed_frame_header_when_asked(mp3_chunks):
    """A stream joined mid-frame (Icecast's burst): the bytes before the first header that the next
    frame confirms are skipped, however the reads split them; a 0xFF inside a frame is not taken."""
    stream = b"".join(mp3_chunks[10:])
    first = len(mp3_chunks[10]) // 2 + 1
    lead = b"\x17\xff\xfb\x90" + b"\x00" * 30  # a false header: no frame follows it
    joined = lead + stream[first:]
    true_start = len(lead) + stream[first:].index(b"\xff\xfb")
    for size in (1, 5, 700, len(joined)):
        clock = Mp3Clock(resync=True)
        seconds = sum(clock.feed(piece) for piece in _pieces(joined, size))
        assert clock.skipped == true_start and clock.bitrate == 128_000, size
        assert seconds == pytest.approx((len(joined) - true_start) * 8 / 128_000)
    with pytest.raises(StreamFormatError):
        Mp3Clock().feed(joined)  # without resync such a stream is bad
    assert Mp3Clock(resync=True).feed(b"\x00" * 5000) == 0.0  # no header yet: nothing counted


def test_opus_packet_durations_follow_the_toc_byte():
    assert opus_packet_samples(31 << 3, None) == 960  # CELT 20 ms, one frame
    assert opus_packet_samples((16 << 3) | 1, None) == 240  # CELT 2.5 ms, two frames
    assert opus_packet_samples((1 << 3) | 2, None) == 1920  # SILK 20 ms, two frames
    assert opus_packet_samples((13 << 3) | 3, 3) == 2880  # hybrid 20 ms, three frames
    with pytest.raises(StreamFormatError):
        opus_packet_samples(3, None)


def test_ogg_clock_counts_the_audio_of_every_page_and_none_of_the_headers(compressed):
    # a listener joining at chunk 20: the header pages, then the pages of chunks 20-49 (5 packets each)
    stream = compressed[0].ogg_header + b"".join(forms.ogg_pages for forms in compressed[20:])
    for size in (1, 333, len(stream)):
        clock = OggOpusClock()
        assert sum(clock.feed(piece) for piece in _pieces(stream, size)) == pytest.approx(3.0), size
    # a chained stream: a new stream's header pages in the middle add no audio
    chained = stream + CompressedStream("test", 50, CodecSettings()).encode(50, 5.0, TONE).ogg_header
    assert OggOpusClock().feed(chained + compressed[30].ogg_pages) == pytest.approx(3.1)
    with pytest.raises(StreamFormatError):
        OggOpusClock().feed(compressed[20].ogg_pages)  # no OpusHead first
    with pytest.raises(StreamFormatError):
        OggOpusClock().feed(compressed[0].ogg_header + b"x" * 40)


# -- the listener's record ----------------------------------------------------------------------


def test_stall_detector_counts_silences_longer_than_the_threshold():
    stalls = StallDetector(1.0)
    stalls.end(5.0)  # nothing arrived: no silence to count
    assert stalls.stalls == 0
    stalls = StallDetector(1.0)
    for t in (0.0, 0.5, 1.5, 3.0, 3.1):
        stalls.on_arrival(t)
    stalls.end(4.5)
    assert stalls.stalls == 2 and stalls.longest_silence_s == pytest.approx(1.5)
    stalls.on_arrival(9.0)  # after the end: ignored
    assert stalls.stalls == 2


def _session(window=(10.0, 20.0)):
    session = HttpListenerSession(0, "h0", window=window, prebuffer_chunks=5, chunk_s=0.1, stall_s=1.0)
    session.on_handshake_start(9.0)
    session.on_response(200, 9.002)
    return session


def test_http_session_holding_real_time():
    s = _session()
    s.on_body(16_000, 1.0, 9.004, 9.005)  # the burst: one second of audio
    t = 9.1
    while t < 20.5:
        s.on_body(1_600, 0.1, t, t + 0.001)
        t += 0.1
    s.finish(20.5)
    summary = s.summary()
    assert summary.connected and summary.failure is None
    assert summary.established_ms == pytest.approx(2.0) and summary.first_byte_ms == pytest.approx(4.0)
    assert summary.first_audio_ms == pytest.approx(4.0)  # the burst brings whole chunks at once
    assert summary.first_audio_read_ms == pytest.approx(5.0)
    assert summary.window_audio_s == pytest.approx(10.0, abs=0.11)
    assert summary.window_bytes == pytest.approx(160_000, abs=1_600)
    assert summary.underruns == 0 and summary.stalls == 0 and summary.longest_silence_ms < 101
    assert summary.chunks == 10 + 114


def test_http_session_stall_and_falling_behind():
    s = _session()
    s.on_body(16_000, 1.0, 9.0, 9.0)
    t = 9.1
    while t < 20.0:
        s.on_body(1_600, 0.1, t, t)
        t += 0.1 if not 14.0 < t < 15.0 else 1.6  # one 1.6 s silence
    s.finish(20.0)
    summary = s.summary()
    assert summary.stalls == 1 and summary.longest_silence_ms == pytest.approx(1600, abs=1)
    assert summary.underruns == 1  # 1 s buffered does not cover 1.6 s
    assert summary.window_audio_s < 10.0 - 0.3

    assert summary.window_span_audio_s < summary.window_span_s - 0.3

    refused = HttpListenerSession(1, "h1", window=(0.0, 1.0))
    refused.on_handshake_start(0.0)
    refused.on_response(503, 0.01)
    refused.on_body(100, 0.1, 0.02, 0.02)  # ignored: never connected
    assert refused.summary().failure == "HTTP 503" and not refused.summary().connected
    assert HttpListenerSession(2, "h2", window=(0.0, 1.0)).summary().failure == "no response"


@pytest.mark.parametrize("audio_per_write_s, behind", [(0.4, False), (0.38, True)])
def test_real_time_is_the_rate_between_arrivals_whatever_the_window_edges(audio_per_write_s, behind):
    # a write of 0.4 s every 0.4 s whose phase leaves 24 writes (9.6 s of audio) inside the 9.99 s
    # window: real time all the same; writes 5 % short fall behind
    s = _session(window=(10.0, 19.99))
    s.on_body(16_000, 1.0, 9.004, 9.005)
    t = 9.995
    while t < 20.5:
        s.on_body(6_400, audio_per_write_s, t, t)
        t += 0.4
    s.finish(20.5)
    summary = s.summary()
    assert summary.window_audio_s == pytest.approx(24 * audio_per_write_s), "one write short of the window"
    report = build_report(LoadTestConfig(url="ws://h:1", listeners=1, format="http-mp3", seconds=10.0),
                          [summary], [], window_s=9.99)
    assert report.listeners_behind_real_time == int(behind)
    assert report.realtime_ratio_min == pytest.approx(audio_per_write_s / 0.4)


# -- runs against local servers -----------------------------------------------------------------


class PacedMp3Server:
    """A local HTTP server streaming MP3 chunks at a chosen pace: a 1 s burst, then one chunk per
    `interval_s` (real time: 0.1), optionally pausing `pause_s` once, with chunked transfer encoding or
    a body until the connection closes; or answering with `status`."""

    def __init__(self, chunks, *, interval_s=0.1, pause_s=0.0, pause_after_s=1.0, chunked=True, status=200,
                 garbage=False):
        self.chunks, self.interval_s, self.pause_s, self.pause_after_s = chunks, interval_s, pause_s, pause_after_s
        self.chunked, self.status, self.garbage = chunked, status, garbage
        self.requests: list[bytes] = []
        self.server = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def _framed(self, data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n" if self.chunked else data

    async def _serve(self, reader, writer):
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            if self.status != 200:
                writer.write(b"HTTP/1.1 %d Busy\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n" % self.status)
                await writer.drain()
                return
            framing = b"Transfer-Encoding: chunked\r\n" if self.chunked else b"Connection: close\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\n" + framing + b"\r\n")
            first = b"\x00" * 1000 if self.garbage else b"".join(self.chunks[:10])
            writer.write(self._framed(first))
            start, k, paused = time.monotonic(), 10, False
            while True:
                due = start + (k - 9) * self.interval_s
                if self.pause_s and not paused and due - start > self.pause_after_s:
                    paused = True
                    start += self.pause_s
                    due += self.pause_s
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(self._framed(self.chunks[k % len(self.chunks)]))
                await writer.drain()
                k += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def stop(self):
        self.server.close()


def _config(url, listeners=4, seconds=2.0):
    return LoadTestConfig(url=url, listeners=listeners, seconds=seconds, format="http-mp3", settle_s=0.3,
                          idle_s=0.0, nice=0, server_pids=(os.getpid(),), label="local")


@pytest.mark.timeout(60)
async def test_http_listeners_against_local_servers(mp3_chunks):
    servers = {
        "real_time": PacedMp3Server(mp3_chunks),
        "until_close": PacedMp3Server(mp3_chunks, chunked=False),
        "stalling": PacedMp3Server(mp3_chunks, pause_s=1.5, pause_after_s=0.5),
        "half_speed": PacedMp3Server(mp3_chunks, interval_s=0.2),
        "busy": PacedMp3Server(mp3_chunks, status=503),
        "not_mp3": PacedMp3Server(mp3_chunks, garbage=True),
    }
    urls = {name: await server.start() for name, server in servers.items()}
    try:
        reports = dict(zip(urls, await asyncio.gather(*(run_loadtest_async(_config(url)) for url in urls.values()))))
    finally:
        for server in servers.values():
            await server.stop()
    assert servers["real_time"].requests[0].startswith(b"GET /listen/default.mp3 HTTP/1.1\r\n")

    for name in ("real_time", "until_close"):
        r = reports[name]
        assert r.passed, (name, r.goals, r.failure_reasons)
        assert r.listeners_connected == 4 and r.stalls == 0 and r.underruns == 0 and r.bad_frames == 0
        assert r.listeners_behind_real_time == 0 and 0.9 < r.realtime_ratio_min <= r.realtime_ratio_p50 < 1.15
        assert 14_000 < r.bytes_per_s_per_listener.p50 < 18_000  # 128 kbit/s is 16,000 B/s
        assert r.first_byte_ms.count == 4 and r.first_audio_ms.count == 4
        assert r.stream_url.endswith("/listen/default.mp3") and "GET http://" in format_report(r)

    stalling = reports["stalling"]
    assert stalling.stalls == 4 and stalling.listeners_with_stalls == 4 and stalling.longest_silence_ms >= 1500
    assert stalling.underruns >= 4 and not stalling.passed

    slow = reports["half_speed"]
    assert slow.listeners_behind_real_time == 4 and slow.realtime_ratio_min < 0.7
    assert {g.name: g.ok for g in slow.goals}["listeners_behind_real_time"] is False

    assert reports["busy"].failure_reasons == {"HTTP 503": 4} and reports["busy"].listeners_connected == 0
    broken = reports["not_mp3"]  # connected (a 200 head), then dropped by the listener
    assert broken.bad_frames == 4 and broken.listeners_closed_early == 4 and not broken.passed
