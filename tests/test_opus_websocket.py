"""The WebSocket `format=opus` end to end through real Ray actors and Serve (docs/PROTOCOL.md, "The opus
format"): its frames carry the packets of the station's Ogg stream, decode with PyAV, and cost a tenth
of the PCM stream's bytes."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import av
import httpx
import numpy as np
import pytest
import websockets

from auralis_ray.stream.codecs import decode_opus_frame, page_packets, parse_pages
from stream_reading import read_for
from waiting import wait_until_async

pytestmark = pytest.mark.integration

BURST_SEC = 2.0  # left out of the byte rates: the opening burst and the first live chunks


def wire_bytes(message: str | bytes) -> int:
    """A server-to-client WebSocket frame's size: payload and header (2 bytes, plus 2 or 8 of length)."""
    size = len(message.encode() if isinstance(message, str) else message)
    return size + 2 + (0 if size < 126 else 2 if size < 65536 else 8)


@dataclass
class Heard:
    """What one WebSocket listener received: messages in order, with their arrival times."""

    opened_at: float = 0.0
    messages: list[dict] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (time, wire bytes) of every message

    def bytes_per_second(self, after: float) -> tuple[float, float]:
        """The wire bytes a second received from `after` seconds past the start to the last message, and
        over how many seconds."""
        counted = [(t, n) for t, n in self.arrivals if t >= self.opened_at + after]
        span = counted[-1][0] - (self.opened_at + after)
        return sum(n for _, n in counted) / span, span


async def hear(url: str, seconds: float) -> Heard:
    heard = Heard(opened_at=time.time())
    async with websockets.connect(url, max_size=2**22, open_timeout=10) as ws:
        deadline = time.time() + seconds
        while (remaining := deadline - time.time()) > 0:
            try:
                message = await asyncio.wait_for(ws.recv(), remaining)
            except asyncio.TimeoutError:
                break
            heard.arrivals.append((time.time(), wire_bytes(message)))
            if isinstance(message, bytes):
                heard.frames.append(message)
            else:
                heard.messages.append(json.loads(message))
    return heard


async def read_http(url: str, seconds: float) -> bytes:
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("GET", url) as response:
            assert response.status_code == 200
            return await read_for(response, seconds)


async def test_opus_frames_carry_the_ogg_streams_packets_and_decode(auralis_server):
    url = auralis_server.audio_url("opus-ogg", format="opus")
    heard, ogg = await asyncio.gather(hear(url, 8.0), read_http(f"{auralis_server.http_url}/listen/default.opus", 8.0))
    established = heard.messages[0]
    assert established["type"] == "connection_established" and established["format"] == "opus"
    assert established["codec"] == {"name": "opus", "sample_rate": 48_000, "channels": 2, "frame_ms": 20,
                                    "bitrate": 128_000}
    frames = [decode_opus_frame(body) for body in heard.frames]
    ids = [frame.chunk_id for frame in frames]
    assert ids == list(range(ids[0], ids[0] + len(ids))) and len(ids) >= 80, "consecutive chunks, burst and live"
    assert all(len(frame.packets) == 5 for frame in frames[1:]), "five 20 ms packets a chunk"
    pages, _ = parse_pages(ogg)
    header, stream = page_packets(pages[:2]), page_packets(pages[2:])
    assert header[0].startswith(b"OpusHead") and header[1].startswith(b"OpusTags")
    websocket = [packet for frame in frames for packet in frame.packets]
    first = stream.index(websocket[0]) if websocket[0] in stream else None
    if first is None:  # the HTTP listener joined later: find the WebSocket packet its stream starts with
        offset = websocket.index(stream[0])
        websocket, first = websocket[offset:], 0
    overlap = min(len(websocket), len(stream) - first)
    assert overlap >= 5 * 60 and websocket[:overlap] == stream[first:first + overlap], "the same packets, in order"
    # any Opus decoder takes the packets as they are, given the stream's OpusHead (for its pre-skip)
    decoder = av.CodecContext.create("opus", "r")
    decoder.extradata, decoder.sample_rate, decoder.layout = header[0], 48_000, "stereo"
    decoded = [frame.to_ndarray() for packet in websocket for frame in decoder.decode(av.Packet(packet))]
    audio = np.concatenate(decoded, axis=1)
    assert audio.shape[0] == 2 and abs(audio.shape[1] - 960 * len(websocket)) <= 960, "20 ms of audio a packet"
    assert np.sqrt(np.mean(audio**2)) > 0.005, "it is the station's audio, not silence"


async def test_an_opus_listener_receives_a_tenth_of_the_pcm_streams_bytes(auralis_server):
    opus, pcm = await asyncio.gather(hear(auralis_server.audio_url("opus-rate", format="opus"), 10.5),
                                     hear(auralis_server.audio_url("pcm-rate", format="binary"), 10.5))
    opus_rate, opus_span = opus.bytes_per_second(BURST_SEC)
    pcm_rate, pcm_span = pcm.bytes_per_second(BURST_SEC)
    print(f"opus {opus_rate:.0f} B/s over {opus_span:.1f} s, binary PCM {pcm_rate:.0f} B/s over {pcm_span:.1f} s, "
          f"ratio {pcm_rate / opus_rate:.1f}")
    assert opus_span >= 8 and pcm_span >= 8
    assert opus_rate <= 17_000, "at most 17 kB/s at 128 kbit/s"
    assert pcm_rate >= 10 * opus_rate


async def test_now_playing_follows_connection_established_and_matches_the_route(auralis_server):
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        async def answered() -> dict | None:
            answer = await http.get("/api/stations/night/now")
            return answer.json() if answer.status_code == 200 else None

        now = await wait_until_async(answered, 10.0, "the station to say what it plays")
    heard = await hear(auralis_server.audio_url("np", station="night", format="opus"), 1.0)
    established, playing = heard.messages[:2]
    assert established["type"] == "connection_established" and playing["type"] == "now_playing"
    assert playing["station"] == now["station"] == "night" and playing["preset"] == now["preset"] == "sleep"
    assert playing["section_number"] >= now["section_number"]
    assert set(now) >= {"preset", "key", "mode", "bpm", "section", "since_chunk_id", "since", "stream_title"}
    assert now["stream_title"].startswith("night - Sleep:")
