"""The sans-I/O streaming core, driven with a fake clock."""

import base64
import gc
import json
import struct
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auralis_ray.config import load_config
from auralis_ray.core_settings import session_settings
from auralis_ray.stream import protocol as p
from auralis_ray.stream.adaptive import TIER_ORDER, TIERS, AdaptiveRingBuffer
from auralis_ray.stream.broadcast import BroadcastRingBuffer, Overrun
from auralis_ray.stream.client import (ClientSession, Closing, ConnectionState, IllegalTransition, Received,
                                       WebSocketClientState)
from auralis_ray.stream.jitter import ChunkTimestamp, JitterTracker
from auralis_ray.stream.codecs import (CodecSettings, TimelineGap, decode_opus_frame, ogg_serial, page_packets,
                                      parse_pages)
from auralis_ray.stream.pool import AudioChunkPool, EncodedChunk
from auralis_ray.stream.schedule import live_chunk_id, publish_time
from auralis_ray.stream.token_bucket import TokenBucket

EPOCH = 1_000_000.0


def pcm(value: int) -> bytes:
    return np.full(p.SAMPLES_PER_CHUNK, value, dtype="<i2").tobytes()


def filled_ring(n: int, capacity: int = 300) -> BroadcastRingBuffer:
    pool = AudioChunkPool(4)
    ring = BroadcastRingBuffer(capacity, 5)
    for cid in range(n):
        ring.write_chunk(pool.encode_chunk(cid, publish_time(EPOCH, cid), pcm(cid % 1000)))
    return ring


# ---- pool / encoding ------------------------------------------------------------------------

def test_chunk_is_encoded_once_into_both_wire_forms():
    chunk = AudioChunkPool().encode_chunk(7, 12.5, pcm(3))
    cid, ts = struct.unpack("<Qd", chunk.binary[:16])
    assert (cid, ts) == (7, 12.5) and len(chunk.binary) == 16 + p.CHUNK_BYTES
    message = json.loads(chunk.json_frame(2, "stable"))
    assert message["type"] == "audio" and message["chunk_id"] == 7 and message["timestamp"] == 12.5
    assert message["buffer_depth"] == 2 and message["current_tier"] == "stable"
    assert base64.b64decode(message["data"]) == pcm(3)
    assert chunk.json_frame(2, "stable") is chunk.json_frame(2, "stable")  # shared by listeners


def parse_frames(data: bytes) -> list:
    """Server-to-client bytes -> frames, with the `websockets` parser a client uses."""
    from websockets.frames import Frame
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            while True:
                next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


def test_wire_frames_are_complete_websocket_frames_shared_by_listeners():
    from websockets.frames import Opcode

    chunk = AudioChunkPool().encode_chunk(9, 3.25, pcm(5))
    binary, text = chunk.websocket_frame("binary", 1, "normal"), chunk.websocket_frame("json", 1, "normal")
    (fb,), (ft,) = parse_frames(binary), parse_frames(text)
    assert fb.opcode is Opcode.BINARY and fb.fin and fb.data == chunk.binary
    assert ft.opcode is Opcode.TEXT and ft.data.decode() == chunk.json_frame(1, "normal")
    assert chunk.websocket_frame("binary", 3, "stable") is binary  # one frame per chunk for every binary listener
    assert chunk.websocket_frame("json", 1, "normal") is text
    assert chunk.websocket_frame("json", 2, "normal") != text


def test_session_wire_frames_are_the_framed_frames():
    plain, wired = session(filled_ring(30), fmt="json"), session(filled_ring(30), fmt="json")
    for s in (plain, wired):
        s.open(0.0)
        s.pump(0.0)
    expected = plain.take_frames(0.0)
    frames = parse_frames(b"".join(wired.take_frames(0.0, wire=True)))
    assert [f.data.decode() for f in frames] == expected and len(expected) == 11


def test_pool_converts_float_audio_and_rejects_wrong_sizes():
    pool = AudioChunkPool(2)
    audio = np.zeros((p.FRAMES_PER_CHUNK, 2), dtype=np.float32)
    audio[:, 0] = 1.5  # clipped
    audio[:, 1] = -0.5
    samples = np.frombuffer(pool.to_pcm(audio), dtype="<i2")
    assert samples[0] == 32767 and samples[1] == -16384
    with pytest.raises(ValueError):
        pool.encode_chunk(0, 0.0, b"\x00" * 10)


def compressing_pool() -> AudioChunkPool:
    return AudioChunkPool(2, codecs=CodecSettings(), station="s")


def test_compressed_forms_are_encoded_once_per_chunk_along_the_timeline():
    pool = compressing_pool()
    chunks = [pool.encode_chunk(cid, publish_time(EPOCH, cid), pcm(cid)) for cid in range(100, 106)]
    forms = [pool.compress(chunk) for chunk in chunks]
    assert pool.compress(chunks[2]) is forms[2] and pool.compressed_count == 6  # once, then the same forms
    assert {f.ogg_header for f in forms} == {forms[0].ogg_header} and forms[0].ogg_serial == ogg_serial("s", 100)
    frame = decode_opus_frame(forms[3].opus_frame)
    assert (frame.chunk_id, frame.timestamp, len(frame.packets)) == (103, publish_time(EPOCH, 103), 5)
    assert forms[3].opus_frame[:16] == chunks[3].binary[:16]  # the PCM binary frame's header
    pages, rest = parse_pages(forms[0].ogg_header + b"".join(f.ogg_pages for f in forms))
    assert rest == b"" and all(page.crc_ok for page in pages)
    websocket_packets = [packet for f in forms for packet in decode_opus_frame(f.opus_frame).packets]
    assert page_packets(pages)[2:] == websocket_packets  # after OpusHead and OpusTags: the same packets
    assert all(f.mp3[:2] in (b"\xff\xfb", b"\xff\xfa") for f in forms[1:])  # each chunk's MP3 starts on a frame
    with pytest.raises(TimelineGap):  # a stateful encoder cannot go back
        pool.compress(pool.encode_chunk(104, publish_time(EPOCH, 104), pcm(1)))
    jumped = pool.compress(pool.encode_chunk(110, publish_time(EPOCH, 110), pcm(1)))
    assert jumped.ogg_serial == ogg_serial("s", 110) != forms[0].ogg_serial and pool.compressed_streams == 2


def test_a_pcm_only_pool_does_not_compress():
    with pytest.raises(ValueError, match="PCM only"):
        AudioChunkPool(2).compress(AudioChunkPool(2).encode_chunk(1, 0.0, pcm(1)))


def test_a_chunk_travels_between_processes_with_its_compressed_forms():
    pool = compressing_pool()
    plain = pool.encode_chunk(7, 12.5, pcm(3))
    assert len(plain.to_transfer()) == 4 and EncodedChunk.from_transfer(plain.to_transfer()).compressed is None
    pool.compress(plain)
    wire = plain.to_transfer()
    back = EncodedChunk.from_transfer(wire)
    assert len(wire) == 8 and back.compressed == plain.compressed
    assert (back.chunk_id, back.timestamp, back.binary, back.json_head) == wire[:4]
    assert EncodedChunk.from_transfer(wire[:4]).binary == plain.binary  # the PCM fields alone still read


def test_an_opus_wire_frame_is_one_binary_frame_per_chunk_for_every_listener():
    from websockets.frames import Opcode

    pool = compressing_pool()
    chunk = pool.encode_chunk(9, 3.25, pcm(5))
    with pytest.raises(LookupError, match="no compressed forms"):
        chunk.websocket_frame("opus", 1, "normal")
    pool.compress(chunk)
    wire = chunk.websocket_frame("opus", 1, "normal")
    (frame,) = parse_frames(wire)
    assert frame.opcode is Opcode.BINARY and frame.data == chunk.compressed.opus_frame == chunk.frame("opus", 0, "")
    assert chunk.websocket_frame("opus", 4, "stable") is wire and chunk.websocket_frame("binary", 1, "normal") != wire


# ---- schedule -------------------------------------------------------------------------------

def test_schedule_is_absolute():
    assert publish_time(EPOCH, 36_000) == pytest.approx(EPOCH + 3600.0)
    assert live_chunk_id(EPOCH, EPOCH - 0.01) == -1
    assert live_chunk_id(EPOCH, EPOCH + 0.1) == 1
    assert live_chunk_id(EPOCH, publish_time(EPOCH, 123_456)) == 123_456


# ---- broadcast ring -------------------------------------------------------------------------

def test_cursor_reads_consecutive_chunks_and_catches_up_when_far_behind():
    ring = filled_ring(20, capacity=30)
    ring.register_client("a", 0, 0.0)
    assert [ring.read_chunk("a", 0.0).chunk_id for _ in range(3)] == [0, 1, 2]
    pool = AudioChunkPool(2)
    for cid in range(20, 40):
        ring.write_chunk(pool.encode_chunk(cid, 0.0, pcm(1)))
    jump = ring.read_chunk("a", 1.0)
    assert isinstance(jump, Overrun) and jump.skipped_to == 40 - 5
    assert ring.read_chunk("a", 1.0).chunk_id == 35


def test_burst_starts_at_the_first_chunk_ever_written():
    pool = AudioChunkPool(2)
    ring = BroadcastRingBuffer(300, 5)
    for cid in range(36, 40):  # a ring that started mid-timeline
        ring.write_chunk(pool.encode_chunk(cid, 0.0, pcm(1)))
    assert ring.oldest_id == 36
    s = session(ring)
    s.open(0.0)
    s.pump(0.0)
    assert audio_ids(s.take_frames(0.0)[1:]) == [36, 37, 38, 39]


def test_hole_in_ring_is_skipped_as_an_overrun():
    ring = filled_ring(5)
    pool = AudioChunkPool(2)
    ring.write_chunk(pool.encode_chunk(9, 0.0, pcm(1)))
    ring.register_client("a", 5, 0.0)
    assert ring.read_chunk("a", 0.0) == Overrun(5, 9)
    assert ring.read_chunk("a", 0.0).chunk_id == 9


def test_ring_refuses_going_backwards_but_tolerates_duplicates():
    ring = filled_ring(10)
    pool = AudioChunkPool(2)
    ring.write_chunk(pool.encode_chunk(9, 0.0, pcm(1)))  # duplicate: ignored
    assert ring.get(9).pcm == pcm(9)
    small = filled_ring(10, capacity=8)
    with pytest.raises(ValueError):
        small.write_chunk(pool.encode_chunk(1, 0, pcm(0)))


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(10, 60), ops=st.lists(st.tuples(st.booleans(), st.integers(1, 8)), max_size=80))
def test_ring_invariants(capacity, ops):
    """Readers only ever see increasing ids; a jump is always reported; positions stay in range."""
    pool = AudioChunkPool(2)
    ring = BroadcastRingBuffer(capacity, 5)
    ring.register_client("r", 0, 0.0)
    written, last_seen = 0, -1
    for is_write, n in ops:
        for _ in range(n):
            if is_write:
                ring.write_chunk(pool.encode_chunk(written, 0.0, pcm(0)))
                written += 1
            else:
                item = ring.read_chunk("r", 0.0)
                if item is None:
                    continue
                if isinstance(item, Overrun):
                    assert item.skipped_to > item.skipped_from
                    last_seen = item.skipped_to - 1
                    continue
                assert item.chunk_id == last_seen + 1
                last_seen = item.chunk_id
        if ring.write_position is not None:
            assert 0 <= ring.write_position - ring.oldest_id <= capacity
            assert 0 <= ring.client_cursors["r"].read_position % capacity < capacity


# ---- jitter / token bucket / tiers ----------------------------------------------------------

def test_jitter_tracker_ema_and_recommendation():
    tracker = JitterTracker(window_size=5, alpha=0.5)
    tracker.record_chunk(0.0, 0.010)
    tracker.record_chunk(0.1, 0.130)
    assert tracker.get_current_jitter() == pytest.approx(20.0)
    assert tracker.get_jitter_std() > 0
    assert tracker.get_recommended_buffer_ms(0.99) > tracker.get_recommended_buffer_ms(0.95) > 20
    tracker.record_underrun()
    assert tracker.get_underrun_rate() == pytest.approx(0.5)
    for i in range(10):
        tracker.record_chunk(i, i)
    assert len(tracker.timestamps) == 5
    assert tracker.history()[-1] == ChunkTimestamp(-1, 9, 9) and tracker.history()[-1].jitter_ms == 0
    with pytest.raises(ValueError):
        tracker.get_recommended_buffer_ms(0.5)


def test_jitter_window_costs_the_cycle_collector_nothing():
    tracker = JitterTracker(window_size=50)
    for i in range(50):
        tracker.record_chunk(i * 0.1, i * 0.1 + 0.003, i)
    gc.collect()
    assert not any(gc.is_tracked(sample) for sample in tracker.timestamps)


@settings(max_examples=80, deadline=None)
@given(steps=st.lists(st.tuples(st.floats(0, 2), st.integers(1, 5)), max_size=50))
def test_token_bucket_never_leaves_bounds(steps):
    bucket = TokenBucket(capacity=10, refill_rate=10.0)
    now = 0.0
    for dt, n in steps:
        now += dt
        bucket.consume(now, n)
        assert 0 <= bucket.tokens <= bucket.capacity


def test_token_bucket_refills_with_time():
    bucket = TokenBucket(capacity=3, refill_rate=10.0)
    assert [bucket.consume(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.get_wait_time(0.0) == pytest.approx(0.1)
    assert bucket.consume(0.1)


def test_tiers_are_ordered():
    targets = [TIERS[t].target_ms for t in TIER_ORDER]
    assert targets == sorted(targets) == [500, 1000, 2000, 3000]


def test_adaptive_buffer_promotes_on_underruns_and_demotes_when_calm():
    buf = AdaptiveRingBuffer(capacity_chunks=4, adjustment_interval_chunks=10)
    tracker = buf.jitter_tracker
    for i in range(10):
        tracker.record_chunk(i, i + 0.002)
    tracker.record_underrun(1)  # 10 % > 5 %
    assert buf.adjust_tier() == ("normal", "stable")
    for i in range(10):
        tracker.record_chunk(i, i + 0.001)
    assert buf.adjust_tier() == ("stable", "normal")
    for i in range(10):
        tracker.record_chunk(i, i + 0.001)
    assert buf.adjust_tier() == ("normal", "minimal")
    assert buf.adjust_tier() is None  # not enough chunks in the new window


def test_adaptive_buffer_is_bounded_fifo():
    buf = AdaptiveRingBuffer(capacity_chunks=3)
    assert all(buf.write_chunk(i) for i in range(3)) and not buf.write_chunk(99)
    assert [buf.read_chunk() for _ in range(4)] == [0, 1, 2, None]
    assert buf.get_buffer_health()["health_status"] == "healthy"


# ---- protocol parsing -----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "not json", "[]", '{"type":"dance"}', '{"type":"ping"}', '{"type":"ping","timestamp":"x"}',
    '{"type":"buffer_control","requested_tier":"huge","timestamp":1}',
    '{"type":"client_report","buffered_ms":-1,"underruns":0,"played_chunks":0,"timestamp":1}',
    '{"type":"client_report","buffered_ms":NaN,"underruns":0,"played_chunks":0,"timestamp":1}',
    '{"type":"client_report","buffered_ms":1,"underruns":1' + "0" * 300 + ',"played_chunks":0,"timestamp":1}',
    '{"type":"ping","timestamp":Infinity}',
    b"\x00\x01", "x" * 5000, None,
])
def test_invalid_client_messages_are_rejected(raw):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_message(raw, 4096, TIER_ORDER)
    assert info.value.code is p.ErrorCode.INVALID_MESSAGE


def test_client_ids():
    assert p.is_valid_client_id("3f2c1a8e-9b7d-4c1e-8f00-123456789abc")
    for bad in ("", "a" * 65, "a b", "é", "a/b", "a.b", "abc\n", "a#1"):
        assert not p.is_valid_client_id(bad)


# ---- client session -------------------------------------------------------------------------

def session(ring, **kw) -> ClientSession:
    defaults = dict(client_id="c1", station="default", fmt="json", ring=ring, settings=session_settings(load_config()),
                    now=0.0, server_version="t")
    defaults.update(kw)
    return ClientSession(**defaults)


def audio_ids(frames):
    ids = []
    for f in frames:
        if isinstance(f, bytes):
            ids.append(struct.unpack("<Q", f[:8])[0])
        else:
            m = json.loads(f)
            ids.append(m["chunk_id"] if m["type"] == "audio" else m["type"])
    return ids


def test_session_starts_with_established_then_burst_of_tier_target():
    ring = filled_ring(50)
    s = session(ring, tier="normal")
    s.open(0.0)
    s.pump(0.0)
    frames = s.take_frames(0.0)
    first = json.loads(frames[0])
    assert first["type"] == "connection_established" and first["buffer_config"]["target_buffer_ms"] == 1000
    assert audio_ids(frames[1:]) == list(range(40, 50))
    assert s.state.connection_state is ConnectionState.ACTIVE


def test_a_newer_socket_with_the_same_client_id_keeps_its_cursor_when_the_older_one_closes():
    ring = filled_ring(20)
    older, newer = session(ring, tier="minimal"), session(ring, tier="minimal")
    older.open(0.0)
    older.pump(0.0)
    newer.open(0.0)
    older.disconnect()  # the replaced socket's clean-up runs after the newer one opened
    pool = AudioChunkPool(2)
    for cid in range(20, 25):
        ring.write_chunk(pool.encode_chunk(cid, 0.0, pcm(1)))
    newer.pump(1.0)
    assert audio_ids(newer.take_frames(1.0)[1:]) == list(range(15, 25)), "the burst, then what followed"
    assert older.cursor_id not in ring.client_cursors and newer.cursor_id in ring.client_cursors


def test_binary_session_gets_binary_frames():
    ring = filled_ring(20)
    s = session(ring, fmt="binary", tier="minimal")
    s.open(0.0)
    s.pump(0.0)
    frames = s.take_frames(0.0)
    assert all(isinstance(f, bytes) for f in frames[1:]) and audio_ids(frames[1:]) == list(range(15, 20))


def test_resume_continues_without_gap_when_held_and_announces_otherwise():
    ring = filled_ring(100)
    s = session(ring, resume_from=60)
    s.open(0.0)
    for t in range(10):
        s.pump(t * 1.0)
    assert audio_ids(s.take_frames(10.0)[1:]) == list(range(61, 100))
    gone = session(filled_ring(400), client_id="c2", resume_from=10)
    gone.open(0.0)
    gone.pump(0.0)
    frames = gone.take_frames(0.0)
    error = json.loads(frames[1])
    assert error["error_code"] == "BUFFER_OVERRUN" and error["severity"] == "warning"
    assert audio_ids(frames[2:]) == list(range(390, 400))
    ahead = session(filled_ring(100), client_id="c3", resume_from=99 + 49)
    ahead.open(0.0)
    ahead.pump(0.0)
    assert audio_ids(ahead.take_frames(0.0)[1:]) == [], "it waits for chunk 149, 50 past the live edge"
    elsewhere = session(filled_ring(100), client_id="c4", resume_from=10**9)
    elsewhere.open(0.0)
    elsewhere.pump(0.0)
    frames = elsewhere.take_frames(0.0)
    assert "ahead of the live edge" in json.loads(frames[1])["error_message"]
    assert audio_ids(frames[2:]) == list(range(90, 100)), "a resume point from another timeline: the burst"


def test_slow_listener_is_skipped_forward_with_an_announced_overrun():
    ring = filled_ring(10)
    s = session(ring)
    s.open(0.0)
    s.pump(0.0)
    s.take_frames(0.0)  # burst out
    pool = AudioChunkPool(2)
    for cid in range(10, 100):  # the socket never drains: outbox overflows
        ring.write_chunk(pool.encode_chunk(cid, 0.0, pcm(1)))
        s.pump(cid * 0.1)
    frames = s.take_frames(10.0)
    kinds = audio_ids(frames)
    assert "error" in kinds
    at = len(kinds) - 1 - kinds[::-1].index("error")
    notice = json.loads(frames[at])
    assert notice["error_code"] == "BUFFER_OVERRUN"
    after = [k for k in kinds[at + 1:] if isinstance(k, int)]
    assert after == list(range(95 - 4, 100))  # just behind the live edge, consecutive from there
    first, last = map(int, notice["error_message"].rsplit(" ", 1)[1].split(".."))
    assert first < last == after[0] - 1, "the notice names the chunks skipped, up to the next one sent"
    assert s.state.overruns >= 1


def test_messages_ping_control_report():
    ring = filled_ring(10)
    s = session(ring)
    s.open(0.0)
    s.take_frames(0.0)
    s.on_message('{"type":"ping","timestamp":5}', 1.0)
    s.on_message('{"type":"buffer_control","requested_tier":"defensive","timestamp":1}', 1.0)
    msgs = [json.loads(f) for f in s.take_frames(1.0)]
    assert msgs[0] == {"type": "pong", "timestamp": 1.0, "client_timestamp": 5}
    assert msgs[1]["type"] == "buffer_control_ack" and msgs[1]["new_tier"] == "defensive"
    assert s.current_tier == "defensive" and s.state.current_buffer_tier == "defensive"


def test_invalid_messages_answered_then_closed_past_the_limit():
    s = session(filled_ring(10))
    s.open(0.0)
    s.take_frames(0.0)
    for i in range(10):
        s.on_message("garbage", i * 0.1)
    assert s.closing is None
    assert all(json.loads(f)["error_code"] == "INVALID_MESSAGE" for f in s.take_frames(1.0))
    s.on_message("garbage", 1.05)
    assert s.closing.code == p.CloseCode.POLICY_VIOLATION


def test_inbound_rate_limit_answers_a_run_of_ignored_messages_once_and_closes_a_flood():
    s = session(filled_ring(10))
    s.open(0.0)
    s.take_frames(0.0)
    for _ in range(25):
        s.on_message('{"type":"ping","timestamp":1}', 0.0)
    types = [json.loads(f).get("error_code") or json.loads(f)["type"] for f in s.take_frames(0.0)]
    assert types == ["pong"] * 20 + ["RATE_LIMIT_EXCEEDED"] and s.closing is None
    for _ in range(12):  # a second later the bucket holds 10 again
        s.on_message('{"type":"ping","timestamp":1}', 1.0)
    types = [json.loads(f).get("error_code") or json.loads(f)["type"] for f in s.take_frames(1.0)]
    assert types == ["pong"] * 10 + ["RATE_LIMIT_EXCEEDED"], "a new run is answered once more"
    limit = s.settings.ignored_message_limit
    for _ in range(limit):
        s.on_message('{"type":"ping","timestamp":1}', 1.5)
    assert s.closing is not None and s.closing.code == p.CloseCode.POLICY_VIOLATION
    s.take_frames(1.5)
    s.on_message('{"type":"ping","timestamp":1}', 9.0)
    assert s.take_frames(9.0) == [], "nothing is answered once the socket is closing"


def test_client_reports_promote_tier_and_feed_status():
    ring = filled_ring(10)
    s = session(ring, settings=session_settings(load_config(buffer={"tier_adjustment_interval_chunks": 10})))
    s.open(0.0)
    pool = AudioChunkPool(2)
    for cid in range(10, 30):
        ring.write_chunk(pool.encode_chunk(cid, cid * 0.1, pcm(1)))
        s.pump(cid * 0.1)
        s.take_frames(cid * 0.1)
    s.on_message('{"type":"client_report","buffered_ms":300,"underruns":3,"played_chunks":25,"timestamp":3}', 3.0)
    msgs = [json.loads(f) for f in s.take_frames(3.0)]
    assert {"type": "buffer_control_ack", "previous_tier": "normal", "new_tier": "stable"}.items() <= msgs[0].items()
    status = s.buffer_status(3.0)
    assert status["buffer_health"]["current_depth_chunks"] == 3.0
    assert status["performance"]["underruns"] == 3 and status["performance"]["chunks_sent"] == 30


def test_shutdown_warning_and_lifecycle():
    s = session(filled_ring(10))
    s.open(0.0)
    s.begin_drain("maintenance", 5.0, 1.0)
    assert s.state.connection_state is ConnectionState.DRAINING
    assert json.loads(s.take_frames(1.0)[-1])["type"] == "shutdown_warning"
    s.disconnect()
    state = WebSocketClientState("x", ConnectionState.DISCONNECTED, 0, 0)
    with pytest.raises(IllegalTransition):
        state.transition(ConnectionState.ACTIVE)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(["json", "binary"]),
       steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([None, "ping", "tier", "status"]),
                                st.floats(0.0, 0.3)), max_size=40))
def test_take_live_is_the_outbox_path_in_one_step(fmt, steps):
    """The fan-out's one-step tick sends the same frames and leaves the same state as pump + take_frames."""
    pool = AudioChunkPool(4)
    rings = [filled_ring(20), filled_ring(20)]
    queued, live = (session(ring, fmt=fmt, client_id="c1") for ring in rings)
    sent: dict[int, list[bytes]] = {0: [], 1: []}
    now, cid = 0.0, 20
    for s in (queued, live):
        s.open(now)
    for new_chunks, message, dt in steps:
        now += dt
        for _ in range(new_chunks):
            for ring in rings:
                ring.write_chunk(pool.encode_chunk(cid, publish_time(EPOCH, cid), pcm(cid)))
            cid += 1
        for index, s in enumerate((queued, live)):
            if message == "ping":
                s.on_message('{"type": "ping", "timestamp": 1.0}', now)
            elif message == "tier":
                s.on_message('{"type": "buffer_control", "requested_tier": "stable"}', now)
            elif message == "status":
                s.queue_status(now)
            frame = s.take_live(now) if s is live else None
            if frame is not None:
                sent[index].append(frame)
            elif s.pump(now):
                frames = s.take_frames(now, wire=True)
                s.sent(frames)
                sent[index].extend(frames)
    assert sent[0] == sent[1]
    a, b = queued, live
    assert replace(a.state, jitter_tracker=None) == replace(b.state, jitter_tracker=None), "counters included"
    stats_a, stats_b = a.ring.get_client_stats(a.cursor_id), b.ring.get_client_stats(b.cursor_id)
    assert {**stats_a, "client_id": None} == {**stats_b, "client_id": None}, "the cursors moved alike"
    ta, tb = a.state.jitter_tracker, b.state.jitter_tracker
    assert (ta.total_chunks, list(ta.timestamps), ta.mean_jitter_ms) == (tb.total_chunks, list(tb.timestamps),
                                                                         tb.mean_jitter_ms)
    assert a.flow.tokens == pytest.approx(b.flow.tokens)


def test_take_live_declines_whatever_is_not_the_common_tick():
    ring = filled_ring(30)
    s = session(ring, fmt="binary")
    assert s.take_live(0.0) is None  # not opened: no cursor
    s.open(0.0)
    assert s.take_live(0.0) is None  # connection_established and the burst wait
    s.pump(0.0)
    s.take_frames(0.0)
    assert s.take_live(0.0) is None  # nothing new
    pool = AudioChunkPool(4)
    ring.write_chunk(pool.encode_chunk(30, publish_time(EPOCH, 30), pcm(30)))
    frame = s.take_live(0.1)
    assert audio_ids([bytes(parse_frames(frame)[0].data)]) == [30]
    for cid in (31, 32):
        ring.write_chunk(pool.encode_chunk(cid, publish_time(EPOCH, cid), pcm(cid)))
    assert s.take_live(0.2) is None  # two behind: the outbox path keeps order and pacing


def test_client_messages_say_what_they_did():
    s = session(filled_ring(10))
    s.open(0.0)
    assert s.on_message('{"type":"ping","timestamp":5}', 0.1) == Received()
    report = '{{"type":"client_report","buffered_ms":300,"underruns":{},"played_chunks":5,"timestamp":1}}'
    assert s.on_message(report.format(3), 0.2) == Received(underruns=3)
    assert s.on_message(report.format(5), 0.3) == Received(underruns=2), "only what is new since the last report"
    assert s.on_message(report.format(5), 0.4) == Received()
    assert s.on_message("garbage", 0.5) == Received(invalid=True)
    limit = s.settings.invalid_message_limit
    outcomes = [s.on_message("garbage", 0.5 + i * 0.01) for i in range(limit)]
    closing = Closing(p.CloseCode.POLICY_VIOLATION, "too many invalid messages")
    assert outcomes[-1] == Received(invalid=True, closing=closing)
    assert s.closing == closing and s.state.errors == limit + 1


def test_a_busy_socket_stalls_the_listener_until_it_takes_frames():
    s = session(filled_ring(10))
    s.open(0.0)
    timeout = s.settings.stalled_client_timeout_sec
    assert not s.is_busy and not s.is_stalled(100.0)
    s.socket_busy(1.0)
    s.socket_busy(2.0)  # busy since the first moment
    assert s.is_busy and not s.is_stalled(1.0 + timeout) and s.is_stalled(1.01 + timeout)
    s.pump(2.0)
    frames = s.take_frames(2.0)
    s.sent(frames)
    assert not s.is_busy and not s.is_stalled(100.0)
    assert (s.state.messages_sent, s.state.bytes_sent) == (len(frames), sum(len(f) for f in frames))
    s.socket_busy(3.0)
    s.sent([])  # room again, nothing to send
    assert not s.is_busy and s.state.messages_sent == len(frames)
