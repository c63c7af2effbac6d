"""The HTTP streams for standard players, end to end through real Ray actors and Serve
(docs/PROTOCOL.md, "HTTP streams"): Debian's ffmpeg plays /listen/{station}.opus and .mp3 joining a
running station, as loud as the PCM stream over the same stretch and without a seam; the headers,
playlists and refusals; ICY titles; a listener that stops reading is dropped, and nobody else notices."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from scipy import signal

from audio_checks import clicks, integrated_lufs
from auralis_ray.stream.codecs import IcyDemuxer, page_packets, parse_pages
from listeners import Recording, listen
from waiting import wait_until_async

pytestmark = pytest.mark.integration

RATE = 44_100
FFMPEG_SECONDS = 21.0  # what ffmpeg plays of each stream: its 1 s burst, then 20 s in real time
SETTLE = RATE // 5  # the decoders' first 200 ms (Opus asks for 80 ms, MP3's bit reservoir a few frames)
LOUDNESS_LU = 0.5
ALIGN_WINDOW = 6 * RATE  # the stretch of the decoded audio located in the PCM stream


async def ffmpeg_play(ffmpeg: str, url: str) -> tuple[np.ndarray, bytes, int]:
    """Debian's ffmpeg reading the stream as a player does, stopping on any error (`-xerror`): the
    audio it decoded (float, [frames, 2] at 44.1 kHz), what it printed, its exit status."""
    process = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", url, "-t", str(FFMPEG_SECONDS),
        "-f", "f32le", "-ac", "2", "-ar", str(RATE), "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), FFMPEG_SECONDS + 30)
    return np.frombuffer(out, dtype="<f4").reshape(-1, 2).astype(np.float64), err, process.returncode


def consecutive_pcm(chunks: dict[int, bytes]) -> np.ndarray:
    ids = sorted(chunks)
    assert ids == list(range(ids[0], ids[-1] + 1)), "the PCM listener heard every chunk"
    data = b"".join(chunks[cid] for cid in ids)
    return np.frombuffer(data, dtype="<i2").reshape(-1, 2).astype(np.float64) / 32768


def locate(decoded: np.ndarray, reference: np.ndarray) -> int:
    """Where `decoded` starts in `reference` (frames): the lag at which a stretch of it correlates best."""
    probe = decoded[SETTLE:SETTLE + ALIGN_WINDOW].mean(axis=1)
    correlation = signal.correlate(reference.mean(axis=1), probe, mode="valid", method="fft")
    return int(np.argmax(correlation)) - SETTLE


def compare(decoded: np.ndarray, reference: np.ndarray) -> dict:
    """The decoded stream against the PCM stream over the same stretch (after the decoder settles)."""
    start = locate(decoded, reference)
    assert start >= 0 and start + len(decoded) <= len(reference), "the PCM stream covers what ffmpeg played"
    ours = decoded[SETTLE:]
    theirs = reference[start + SETTLE:start + len(decoded)]
    similarity = np.corrcoef(ours.mean(axis=1), theirs.mean(axis=1))[0, 1]
    ours_clicks, their_clicks = clicks(ours), clicks(theirs)
    # a click in the decoded audio where the PCM has none (within 5 ms) is a seam the encoding made
    new_clicks = [c for c in ours_clicks.positions if not np.any(np.abs(their_clicks.positions - c) < RATE // 200)]
    return {"start_frame": start, "seconds": len(decoded) / RATE, "similarity": float(similarity),
            "loudness_difference_lu": integrated_lufs(ours, RATE) - integrated_lufs(theirs, RATE),
            "clicks": ours_clicks.count, "new_clicks": len(new_clicks)}


async def test_ffmpeg_plays_both_streams_joining_mid_stream_as_loud_as_pcm_and_seamless(auralis_server, ffmpeg):
    heard = Recording("pcm-reference")
    pcm_listener = asyncio.create_task(listen(auralis_server.audio_url("pcm-reference", format="binary"),
                                              FFMPEG_SECONDS + 30, rec=heard))
    # ffmpeg joins once the PCM listener is past its burst, so that the PCM stream covers what ffmpeg plays
    await wait_until_async(lambda: len(heard.order) >= 12 or pcm_listener.done(), 10.0, "the PCM listener")
    (opus, opus_err, opus_rc), (mp3, mp3_err, mp3_rc) = await asyncio.gather(
        ffmpeg_play(ffmpeg, f"{auralis_server.http_url}/listen/default.opus"),
        ffmpeg_play(ffmpeg, f"{auralis_server.http_url}/listen/default.mp3"))
    # what ffmpeg played ends at the live edge: half a second more of PCM covers it
    covered = len(heard.order) + 5
    await wait_until_async(lambda: len(heard.order) >= covered or pcm_listener.done(), 10.0, "the PCM listener")
    pcm_listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pcm_listener
    reference = consecutive_pcm(heard.chunks)
    for name, decoded, err, rc in (("opus", opus, opus_err, opus_rc), ("mp3", mp3, mp3_err, mp3_rc)):
        assert rc == 0 and err == b"", f"ffmpeg {name}: {err.decode(errors='replace')[-500:]}"
        assert len(decoded) >= 20 * RATE, f"{name}: at least 20 s played"
        report = compare(decoded, reference)
        print(f"{name}: {report}")
        assert report["similarity"] > 0.9, f"{name}: the decoded audio is the PCM stream's audio"
        assert abs(report["loudness_difference_lu"]) <= LOUDNESS_LU, name
        assert report["new_clicks"] == 0, f"{name}: no discontinuity the PCM stream does not have"


async def head_request(url: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP/1.1 HEAD with `Connection: close`: (status, headers, whatever followed the head)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        rest = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split()[1]), {k.lower(): v for k, v in headers.items()}, rest


async def test_head_cors_no_store_playlists_and_a_json_404(auralis_server):
    base = auralis_server.http_url
    host = urlsplit(base).netloc
    async with httpx.AsyncClient(base_url=base) as http:
        for path, media_type in (("/listen/default.mp3", "audio/mpeg"), ("/listen/night.opus", "audio/ogg")):
            status, headers, body = await head_request(base, path)
            assert status == 200 and body == b"", "the head alone, then the connection closes"
            assert headers["content-type"] == media_type
            assert headers["cache-control"] == "no-store" and headers["access-control-allow-origin"] == "*"
        m3u = await http.get("/listen/night.m3u")
        assert m3u.headers["content-type"] == "audio/x-mpegurl" and m3u.text.startswith("#EXTM3U")
        assert f"http://{host}/listen/night.mp3" in m3u.text.splitlines()
        pls = await http.get("/listen/night.pls")
        assert pls.headers["access-control-allow-origin"] == "*"
        assert f"File2=http://{host}/listen/night.opus" in pls.text
        unknown = await http.get("/listen/nowhere.opus")
        assert unknown.status_code == 404 and unknown.json() == {"error": "unknown station 'nowhere'"}


async def test_icy_blocks_carry_the_stream_title_of_what_plays(auralis_server):
    titles = []
    async with httpx.AsyncClient(base_url=auralis_server.http_url, timeout=10) as http:
        before = (await http.get("/api/stations/default/now")).json()["stream_title"]
        async with http.stream("GET", "/listen/default.mp3", headers={"Icy-MetaData": "1"}) as response:
            demuxer = IcyDemuxer(int(response.headers["icy-metaint"]))
            async with asyncio.timeout(10):  # a block every 16,000 bytes: one second at 128 kbit/s
                async for piece in response.aiter_raw():
                    audio, announced = demuxer.feed(piece)
                    titles += [title for _, title in announced]
                    if titles:
                        break
        after = (await http.get("/api/stations/default/now")).json()["stream_title"]
    assert titles[0] in (before, after) and titles[0].startswith("default - Focus:")


async def open_stream(url: str, path: str, receive_buffer: int | None = None):
    """A raw HTTP/1.1 GET: (status, headers, reader, writer) once the status line and headers are in."""
    parts = urlsplit(url)
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((parts.hostname, parts.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split()[1]), {k.lower(): v for k, v in headers.items()}, reader, writer


async def discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def test_http_listeners_count_toward_capacity_and_the_next_gets_503(auralis_server):
    limit = auralis_server.overrides["concurrency"]["max_concurrent_clients"]
    opened, readers = [], []
    try:
        for _ in range(limit + 1):
            status, headers, reader, writer = await open_stream(auralis_server.http_url, "/listen/night.mp3")
            opened.append(writer)
            if status != 200:
                break
            readers.append(asyncio.create_task(discard(reader)))
        assert status == 503 and int(headers["retry-after"]) > 0 and headers["content-type"] == "application/json"
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        assert json.loads(body)["error"].startswith("server at capacity"), body
        assert 0 < len(readers) <= limit
    finally:
        for writer in opened:
            writer.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        async def room() -> bool:
            return (await http.get("/api/status")).json()["listeners"] == 0

        await wait_until_async(room, 10.0, "the HTTP listeners to be forgotten")


async def test_a_listener_that_stops_reading_is_dropped_while_another_keeps_real_time(auralis_server):
    status, _, _, stalled = await open_stream(auralis_server.http_url, "/listen/default.opus", receive_buffer=4096)
    assert status == 200
    data = bytearray()
    try:
        async with httpx.AsyncClient(base_url=auralis_server.http_url, timeout=10) as http:
            async with http.stream("GET", "/listen/default.opus") as response:
                started = time.monotonic()

                def http_listeners(expected: int):
                    async def counted() -> bool:
                        details = (await http.get("/api/metrics")).json()["listener_details"]
                        return sum(1 for d in details if d.get("http")) == expected
                    return counted

                async def reading():
                    async for piece in response.aiter_raw():
                        data.extend(piece)

                reader = asyncio.create_task(reading())
                await wait_until_async(http_listeners(2), 10.0, "both HTTP listeners")
                await wait_until_async(http_listeners(1), 60.0, "the listener that stopped reading to be dropped",
                                       poll=0.5)
                elapsed = time.monotonic() - started
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
    finally:
        stalled.close()
    pages, _ = parse_pages(bytes(data))
    chunks = len(page_packets(pages[2:])) / 5
    print(f"the stalled listener was dropped after {elapsed:.1f} s; the other heard {chunks:.0f} chunks")
    assert chunks >= 10 * (elapsed - 1.0), "the other listener kept real time"


async def test_a_drain_ends_http_streams_cleanly_and_refuses_new_ones_meanwhile(auralis_server):
    token = {"authorization": f"Bearer {auralis_server.control_token}"}
    async with httpx.AsyncClient(base_url=auralis_server.http_url, timeout=10) as http:
        async with http.stream("GET", "/listen/default.mp3") as response:
            assert response.status_code == 200
            drain = await http.post("/api/admin/drain", json={"period": 1}, headers=token)
            assert drain.status_code == 200 and drain.json()["draining"] and not drain.json()["final"]
            refused = await http.get("/listen/night.opus")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "server is draining; reconnect"
            async with asyncio.timeout(10):
                body = b"".join([piece async for piece in response.aiter_raw()])  # it ends without an error
        assert body[:2] in (b"\xff\xfb", b"\xff\xfa") and len(body) > 16_000, "the burst, then the drain period"

        async def streams_again() -> bool:
            async with http.stream("GET", "/listen/night.opus") as again:
                return again.status_code == 200

        await wait_until_async(streams_again, 10.0, "the replica to take new listeners after the drain", poll=0.5)
