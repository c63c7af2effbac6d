"""Compressed delivery without I/O: an HTTP stream listener (stream/http_listener.py), the replica's
fan-out to HTTP listeners (stream/http_fanout.py, the feed's tick in serve/hub.py, over fake
transports), what a replica knows a station plays (stream/now_playing.py), and the WebSocket `opus`
format of ClientSession."""

from __future__ import annotations

import json

import numpy as np
import pytest

from auralis_ray.config import load_config
from auralis_ray.core_settings import feed_settings, session_settings
from auralis_ray.monitor.metrics import PerformanceMetrics
from auralis_ray.serve.direct import BodyWriter
from auralis_ray.serve.http_stream import http_stream_settings
from auralis_ray.serve.hub import StationFeed
from auralis_ray.serve.listener import HttpListener
from auralis_ray.stream import protocol as p
from auralis_ray.stream.broadcast import BroadcastRingBuffer
from auralis_ray.stream.client import ClientSession
from auralis_ray.stream.codecs import (OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE, CodecSettings, IcyDemuxer,
                                      decode_opus_frame, page_packets, parse_pages)
from auralis_ray.stream.codecs.ogg import FLAG_FIRST
from auralis_ray.stream.http_fanout import LiveSpans, WriteWheel, chunked_body
from auralis_ray.stream.http_listener import HttpStreamSession, HttpStreamSettings, StreamFormat
from auralis_ray.stream.now_playing import NowPlayingTimeline
from auralis_ray.stream.pool import AudioChunkPool, EncodedChunk
from auralis_ray.stream.schedule import publish_time
from fake_transport import FakeTransport

EPOCH = 1_000_000.0
SETTINGS = HttpStreamSettings(burst_chunks=10, backlog_max_bytes=65_536, icy_metaint=1_000)


def tone(chunk_id: int) -> bytes:
    """A chunk of a steady 330 Hz tone (continuous across chunks)."""
    t = (np.arange(p.FRAMES_PER_CHUNK) + chunk_id * p.FRAMES_PER_CHUNK) / p.SAMPLE_RATE
    wave = np.round(8000 * np.sin(2 * np.pi * 330 * t)).astype("<i2")
    return np.repeat(wave, 2).tobytes()


class Station:
    """A station's timeline encoded in every wire form, written into a replica's ring as it is published."""

    def __init__(self, name: str = "s"):
        self.pool = AudioChunkPool(2, codecs=CodecSettings(), station=name)
        self.ring = BroadcastRingBuffer(300, 5)

    def chunk(self, chunk_id: int, compressed: bool = True) -> EncodedChunk:
        chunk = self.pool.encode_chunk(chunk_id, publish_time(EPOCH, chunk_id), tone(chunk_id))
        if compressed:
            self.pool.compress(chunk)
        return chunk

    def publish(self, first: int, last: int, compressed: bool = True) -> list[EncodedChunk]:
        chunks = [self.chunk(cid, compressed) for cid in range(first, last + 1)]
        for chunk in chunks:
            self.ring.write_chunk(chunk)
        return chunks


def listener(station: Station, fmt: StreamFormat, name: str = "http:1", **kw) -> HttpStreamSession:
    session = HttpStreamSession(name, "s", fmt, station.ring, SETTINGS, now=0.0, **kw)
    session.open(0.0)
    return session


def joined(pieces) -> bytes:
    return b"".join(bytes(piece) for piece in pieces)


# ---- the HTTP stream listener ---------------------------------------------------------------------

def test_an_ogg_listener_gets_the_header_pages_then_whole_pages_from_a_chunk_boundary():
    station = Station()
    chunks = station.publish(0, 29)
    session = listener(station, StreamFormat.OGG_OPUS)
    burst = joined(session.take(0.0))
    header = chunks[0].compressed.ogg_header
    assert burst == header + b"".join(c.compressed.ogg_pages for c in chunks[20:]), "header pages, then a burst of 10"
    pages, rest = parse_pages(burst)
    assert rest == b"" and all(page.crc_ok for page in pages)
    assert pages[0].flags & FLAG_FIRST and pages[0].body.startswith(b"OpusHead")
    assert pages[1].body.startswith(b"OpusTags") and pages[2].sequence > pages[1].sequence + 1, "joined mid-stream"
    assert len(page_packets(pages[2:])) == 10 * 5, "five 20 ms packets a chunk"
    assert session.take(0.1) == [], "nothing more until the next chunk is published"
    (later,) = station.publish(30, 30)
    assert session.take(0.1) == [later.compressed.ogg_pages], "then each chunk's pages, the same bytes for everyone"
    assert (session.chunks_sent, session.bytes_sent) == (11, len(burst) + len(later.compressed.ogg_pages))


def test_a_new_ogg_stream_on_the_station_is_chained_after_its_header_pages():
    station = Station()
    station.publish(0, 9)
    session = listener(station, StreamFormat.OGG_OPUS)
    session.take(0.0)
    (restarted,) = station.publish(20, 20)  # a restarted station actor: a jump in the timeline, a new stream
    assert restarted.compressed.ogg_serial != station.ring.get(9).compressed.ogg_serial
    assert joined(session.take(2.0)) == restarted.compressed.ogg_header + restarted.compressed.ogg_pages
    assert session.chunks_skipped == 10, "the hole in the ring"


def test_an_mp3_listener_starts_on_a_frame_with_a_burst_of_at_most_the_normal_tier():
    station = Station()
    chunks = station.publish(0, 49)
    session = listener(station, StreamFormat.MP3)
    burst = joined(session.take(0.0))
    assert burst == b"".join(c.compressed.mp3 for c in chunks[40:])
    assert burst[:2] in (b"\xff\xfb", b"\xff\xfa"), "an MPEG-1 Layer III frame header"
    empty = listener(Station(), StreamFormat.MP3, "http:2")
    assert empty.take(0.0) == [] and not empty.has_due(), "a station with nothing published: from its first chunk"


def test_icy_metadata_interleaves_the_title_and_leaves_the_audio_bytes_as_they_are():
    station = Station()
    station.publish(0, 9)
    plain = listener(station, StreamFormat.MP3, "http:plain")
    icy = listener(station, StreamFormat.MP3, "http:icy", icy=True, title="s - Focus: C ionian")
    demuxer = IcyDemuxer(SETTINGS.icy_metaint)
    audio, titles = demuxer.feed(joined(icy.take(0.0)))
    assert audio == joined(plain.take(0.0))
    assert titles[0] == (SETTINGS.icy_metaint, "s - Focus: C ionian") and len(titles) == 1, "then 'no change' blocks"
    icy.set_title("s - Focus: C ionian, bloom (section 2)")
    station.publish(10, 20)
    audio, titles = demuxer.feed(joined(icy.take(1.0)))
    assert audio == joined(plain.take(1.0)) and [t for _, t in titles] == ["s - Focus: C ionian, bloom (section 2)"]
    with pytest.raises(ValueError, match="MP3"):
        HttpStreamSession("http:x", "s", StreamFormat.OGG_OPUS, station.ring, SETTINGS, 0.0, icy=True)


def test_the_backlog_counts_the_socket_and_the_chunks_not_taken():
    station = Station()
    station.publish(0, 9)
    session = listener(station, StreamFormat.MP3)
    burst = session.pending_bytes()
    assert 0 < burst < SETTINGS.backlog_max_bytes and not session.over_backlog(0)
    session.take(0.0)
    assert session.pending_bytes() == 0 and not session.over_backlog(SETTINGS.backlog_max_bytes)
    assert session.over_backlog(SETTINGS.backlog_max_bytes + 1), "a socket holding too much: it stopped reading"
    station.publish(10, 60)  # a sender that no longer takes anything: the chunks pile up behind it
    assert session.over_backlog(0) and session.largest_backlog > SETTINGS.backlog_max_bytes


@pytest.mark.parametrize("fmt", list(StreamFormat))
def test_after_the_burst_a_write_waits_for_chunks_per_write_chunks_and_takes_them_in_one_step(fmt):
    station = Station()
    station.publish(0, 9)
    spans = LiveSpans(station.ring)
    settings = HttpStreamSettings(burst_chunks=4, backlog_max_bytes=65_536, chunks_per_write=2)
    live, twin, general = (HttpStreamSession(f"http:{name}", "s", fmt, station.ring, settings, now=0.0)
                           for name in ("live", "twin", "general"))
    for session in (live, twin, general):
        session.open(0.0)
        assert session.ready_to_write(), "the opening burst goes at once"
        assert session.next_write_id() == 10, "looked at on the next tick"
    assert live.take_live(0.0, spans) is None, "the burst: more than one write's chunks, and the Ogg header pages"
    assert joined(live.take(0.0)) == joined(twin.take(0.0)) == joined(general.take(0.0))
    assert live.next_write_id() == 11, "due when the second chunk after the burst is published"
    station.publish(10, 10)
    assert not live.ready_to_write() and live.chunks_due() == 1, "one chunk waits for the next"
    station.publish(11, 11)
    assert live.ready_to_write()
    span = live.take_live(1.1, spans)
    assert (span.first, span.end) == (10, 12) and span.body == joined(general.take(1.1)), "the general path's bytes"
    assert twin.take_live(1.1, spans) is span, "one object for every listener writing the same chunks"
    assert span.chunked == b"%x\r\n" % len(span.body) + span.body + b"\r\n", "one chunk of the chunked coding"
    assert live.chunks_sent == general.chunks_sent == 6 and live.bytes_sent == general.bytes_sent
    assert live.next_write_id() == 13
    station.publish(12, 14)
    assert live.take_live(1.4, spans) is None, "three due: more than one write's worth goes the general way"
    assert live.next_write_id() == 15, "overdue: looked at on the next tick"
    with pytest.raises(ValueError, match="chunks_per_write"):
        HttpStreamSettings(burst_chunks=4, backlog_max_bytes=65_536, chunks_per_write=0)


def test_icy_metadata_and_a_new_ogg_stream_take_the_general_path():
    station = Station()
    station.publish(0, 9)
    spans = LiveSpans(station.ring)
    icy = listener(station, StreamFormat.MP3, "http:icy", icy=True, title="t")
    ogg = listener(station, StreamFormat.OGG_OPUS, "http:ogg")
    for session in (icy, ogg):
        session.take(0.0)
    station.publish(10, 10)
    assert icy.take_live(1.0, spans) is None, "an ICY block may fall inside the chunk"
    assert ogg.take_live(1.0, spans).body == station.ring.get(10).compressed.ogg_pages
    station.publish(20, 20)  # a restarted station actor: a jump, and a new Ogg stream with its own header pages
    assert ogg.take_live(2.0, spans) is None and joined(ogg.take(2.0)).startswith(station.ring.get(20).compressed.ogg_header)


def test_a_span_is_none_across_a_hole_chunks_without_forms_or_two_ogg_streams():
    station = Station()
    station.publish(0, 2)
    station.publish(3, 3, compressed=False)
    station.publish(5, 5)
    spans = LiveSpans(station.ring)
    assert spans.get(True, 0, 3).body == b"".join(station.ring.get(cid).compressed.mp3 for cid in range(3))
    assert spans.get(True, 2, 4) is None, "chunk 3 has no compressed forms"
    assert spans.get(True, 4, 6) is None, "chunk 4 is a hole"
    restarted = Station()  # the same ids from another station actor: another Ogg stream
    station.ring.write_chunk(restarted.chunk(6))
    assert spans.get(False, 5, 6).ogg_header == station.ring.get(5).compressed.ogg_header
    assert spans.get(False, 5, 7) is None, "two Ogg streams"
    assert spans.get(True, 5, 7) is not None, "MP3 frames need no header"
    assert chunked_body(b"") == b"", "an empty chunk would end the body"


def test_the_write_wheel_gives_back_what_is_due_the_earliest_first_and_forgets_what_is_removed():
    wheel: WriteWheel[str] = WriteWheel()
    wheel.schedule("a", "A", 12)
    wheel.schedule("b", "B", 11)
    wheel.schedule("c", "C", 13)
    wheel.schedule("a", "A", 11)  # filed again: only the newer filing counts
    wheel.schedule("d", "D", 11)
    wheel.remove("d")
    wheel.remove("never filed")
    assert len(wheel) == 3 and wheel.due_at("a") == 11 and "d" not in wheel
    assert wheel.pop_due(10) == []
    assert wheel.pop_due(12) == ["B", "A"] and len(wheel) == 1
    assert wheel.pop_due(20) == ["C"] and len(wheel) == 0 and wheel.due_at("c") is None


def dechunk(writes: list[bytes]) -> bytes:
    """The body that writes in the chunked transfer coding carry (each write is whole chunks)."""
    body = b""
    for data in writes:
        while data:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line, 16)
            body, data = body + data[:size], data[size + 2:]
    return body


def test_the_feeds_tick_visits_each_http_listener_when_its_write_is_due_and_writes_shared_bytes():
    config = load_config(concurrency={"http_chunks_per_write": 3})
    feed = StationFeed("s", None, feed_settings(config), 1.0, PerformanceMetrics("ingress"))
    station = Station()
    for chunk_id in range(10):
        feed.ring.write_chunk(station.chunk(chunk_id))
    settings = http_stream_settings(config)
    listeners = []
    for n in range(4):
        session = HttpStreamSession(f"http:{n}", "s", StreamFormat.MP3, feed.ring, settings, now=0.0)
        session.open(0.0)
        listener = HttpListener(session)
        listener.writer = BodyWriter(FakeTransport(), True, settings.backlog_max_bytes, 4096)
        feed.add_http(listener)
        listeners.append(listener)
    stuck = listeners[3]
    for listener in listeners[:2]:  # two start now, one a tick later: another write phase
        feed.start_http(listener, 0.0)
    visited: list[str] = []
    for listener in listeners:
        send_due = listener.send_due
        listener.send_due = lambda now, spans, send_due=send_due, name=listener.listener_id: (
            visited.append(name), send_due(now, spans))[1]
    for chunk_id in range(10, 40):
        feed.ring.write_chunk(station.chunk(chunk_id))
        if chunk_id == 11:
            feed.start_http(listeners[2], 1.1)
        if chunk_id == 20:
            feed.start_http(stuck, 2.0)
            stuck.writer.transport.backlog = settings.backlog_max_bytes + 1  # it stops reading
        visited.clear()
        feed.tick(chunk_id / 10)
        if 11 < chunk_id < 20:  # the one that has not started is not looked at
            assert visited == [listener.listener_id for listener in listeners[:3]
                               if listener.session.cursor.read_position == chunk_id + 1], "only those due"
    mp3 = [feed.ring.get(chunk_id).compressed.mp3 for chunk_id in range(40)]
    first, second, third = (listener.writer.transport.written for listener in listeners[:3])
    assert dechunk(first) == dechunk(second) == b"".join(mp3), "every chunk once, in order"
    assert dechunk(third) == b"".join(mp3[:39]), "the last chunk waits for the next two"
    assert all(a is b for a, b in zip(first[1:], second[1:])), "one bytes object per write, for both"
    assert len(first) == 1 + 10 and len(third) == 1 + 9, "the burst, then a write every 3 chunks"
    assert not set(map(id, first[1:])) & set(map(id, third[1:])), "another phase, other spans"
    assert stuck.dropped and stuck.writer.transport.aborted and len(stuck.writer.transport.written) == 1, \
        "dropped at its first write after the burst"
    assert "http:3" not in feed.http_due
    assert sorted(feed.http_due.due_at(f"http:{n}") for n in range(3)) == [41, 42, 42]


def test_chunks_without_compressed_forms_are_skipped_and_a_closed_stream_sends_nothing():
    station = Station()
    station.publish(0, 4, compressed=False)
    session = listener(station, StreamFormat.OGG_OPUS)
    assert session.take(0.0) == [] and session.chunks_skipped == 5
    station.publish(5, 5)
    assert session.take(0.5)[0] == station.ring.get(5).compressed.ogg_header
    station.publish(6, 6)
    session.close("drain")
    assert session.close("later") == "drain" and session.take(0.6) == []
    session.disconnect()
    assert "http:1" not in station.ring.client_cursors


def test_stream_formats_name_their_media_types():
    assert (StreamFormat("mp3").media_type, StreamFormat("opus").media_type) == ("audio/mpeg", "audio/ogg")


# ---- now playing on a replica ----------------------------------------------------------------------

def section(since: int, number: int, name: str = "drift") -> dict:
    return {"preset": "focus", "key": "C", "mode": "ionian", "bpm": 60.0, "section": name, "section_number": number,
            "since_chunk_id": since, "station": "s", "since": publish_time(EPOCH, since),
            "stream_title": f"s - section {number}"}


def test_the_section_sounding_at_the_newest_published_chunk_is_current():
    timeline = NowPlayingTimeline()
    assert timeline.advance(5) is None and timeline.current is None
    timeline.merge([section(0, 1), section(40, 2)])
    assert timeline.advance(5) == section(0, 1) and timeline.current == section(0, 1)
    assert timeline.advance(39) is None, "no change within a section"
    assert timeline.advance(40) == section(40, 2)
    timeline.merge([section(40, 2), section(90, 3)])  # the next fetch repeats the current section
    assert timeline.advance(60) is None and timeline.playing_at(95) == section(90, 3)
    timeline.merge([section(40, 2), section(80, 7, "bloom")])  # a restarted station plays something else there
    assert timeline.playing_at(95) == section(80, 7, "bloom") and timeline.advance(81) == section(80, 7, "bloom")
    assert timeline.sections == [section(80, 7, "bloom")], "what sounded before the current section is forgotten"
    timeline.merge([])
    assert timeline.sections == [section(80, 7, "bloom")]


# ---- the WebSocket opus format --------------------------------------------------------------------

def opus_session(station: Station, **kw) -> ClientSession:
    return ClientSession(client_id="o1", station="s", fmt="opus", ring=station.ring,
                         settings=session_settings(load_config()), now=0.0, server_version="t",
                         codec=p.opus_codec(128_000), **kw)


def opus_listener_past_its_burst(station: Station) -> ClientSession:
    """An opus listener that joined once chunks 0..9 were published and has taken its opening burst."""
    station.publish(0, 9)
    session = opus_session(station)
    session.open(0.0)
    session.pump(0.0)
    session.take_frames(0.0)
    return session


def test_the_opus_codec_is_what_the_station_encodes():
    assert p.OPUS_SAMPLE_RATE == OPUS_SAMPLE_RATE and p.OPUS_FRAME_MS == 1000 * OPUS_FRAME_SAMPLES // OPUS_SAMPLE_RATE
    assert p.OPUS_FORMAT in p.FORMATS


def test_an_opus_listener_gets_its_format_and_codec_then_one_shared_frame_per_chunk():
    station = Station()
    chunks = station.publish(0, 19)
    session = opus_session(station)
    session.open(0.0)
    session.pump(0.0)
    frames = session.take_frames(0.0, wire=False)
    established = json.loads(frames[0])
    assert established["format"] == established["buffer_config"]["format"] == "opus"
    assert established["codec"] == {"name": "opus", "sample_rate": 48_000, "channels": 2, "frame_ms": 20,
                                    "bitrate": 128_000}
    assert frames[1:] == [c.compressed.opus_frame for c in chunks[10:]]
    assert [decode_opus_frame(f).chunk_id for f in frames[1:]] == list(range(10, 20))
    (later,) = station.publish(20, 20)
    assert session.take_live(2.0) is later.websocket_frame("opus", 0, "normal"), "the shared pre-framed bytes"
    pcm = ClientSession(client_id="b1", station="s", fmt="binary", ring=station.ring,
                        settings=session_settings(load_config()), now=0.0, server_version="t")
    pcm.open(2.0)
    assert "codec" not in json.loads(pcm.take_frames(2.0)[0]), "PCM formats name no codec"


def test_an_opus_listener_skips_a_chunk_without_compressed_forms_with_an_announcement():
    station = Station()
    session = opus_listener_past_its_burst(station)
    station.publish(10, 10, compressed=False)
    assert session.take_live(1.0) is None, "not the common tick"
    session.pump(1.0)
    (announced,) = [json.loads(f) for f in session.take_frames(1.0)]
    assert announced["error_code"] == "BUFFER_OVERRUN" and "10..10" in announced["error_message"]
    (after,) = station.publish(11, 11)
    assert session.take_live(1.1) == after.websocket_frame("opus", 0, "normal")


def test_a_now_playing_message_goes_before_the_next_audio():
    station = Station()
    station.publish(0, 9)
    session = opus_session(station)
    session.open(0.0)
    message = p.dumps(p.now_playing(section(0, 1)))
    session.queue_now_playing(message)
    session.pump(0.0)
    frames = session.take_frames(0.0)
    assert json.loads(frames[1]) == {"type": "now_playing", **section(0, 1)} and isinstance(frames[2], bytes)


def test_a_new_section_is_announced_right_before_its_first_chunk_in_the_listeners_stream():
    station = Station()
    session = opus_listener_past_its_burst(station)
    station.publish(10, 12)  # a late tick publishes three chunks at once; the section starts at the second
    session.announce(p.dumps(p.now_playing(section(11, 2))), 11)
    assert session.take_live(1.2) is None, "not the common tick"
    session.pump(1.2)
    heard = [decode_opus_frame(f).chunk_id if isinstance(f, bytes) else json.loads(f)["type"]
             for f in session.take_frames(1.2)]
    assert heard == [10, "now_playing", 11, 12]
    (later,) = station.publish(13, 13)
    assert session.take_live(1.3) == later.websocket_frame("opus", 0, "normal"), "announced once"
