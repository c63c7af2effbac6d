"""FeedCore (stream/feed.py): a station's chunks on one replica, driven with a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from auralis_ray.stream import protocol as p
from auralis_ray.stream.codecs import CodecSettings
from auralis_ray.stream.feed import READY_MAX_BEHIND_CHUNKS, TICK_HISTORY, FeedCore, TickRecord
from auralis_ray.stream.pool import AudioChunkPool, EncodedChunk
from auralis_ray.stream.schedule import publish_time
from auralis_ray.stream.settings import FeedSettings

EPOCH = 1_000_000.0
SETTINGS = FeedSettings(ring_capacity_chunks=300, catchup_behind_chunks=5, replica_prefetch_chunks=30,
                        replica_fetch_interval_sec=1.0, ready_ahead_chunks=10)
POOL = AudioChunkPool(2)
SILENCE = np.zeros(p.SAMPLES_PER_CHUNK, dtype="<i2").tobytes()


def chunks(first: int, last: int) -> list[EncodedChunk]:
    """Chunks first..last as the station serves them, stamped on the absolute schedule."""
    return [POOL.encode_chunk(cid, publish_time(EPOCH, cid), SILENCE) for cid in range(first, last + 1)]


def at(chunk_id: float) -> float:
    """The moment chunk `chunk_id` is due."""
    return publish_time(EPOCH, chunk_id)


def test_the_first_fetch_keeps_the_past_as_history_and_queues_the_future():
    core = FeedCore(SETTINGS)
    assert core.fetch_after() == -1 and not core.has_audio
    assert core.merge_fetch(EPOCH, chunks(80, 129), now=at(99.5)) == 30
    assert (core.ring.oldest_id, core.ring.latest_id) == (80, 99)
    assert core.has_audio and core.newest_known == 129 and core.next_due() == at(100)
    assert core.fetch_after() == 129, "later fetches ask for what is new"


def test_later_fetches_queue_only_what_is_new_even_when_its_time_has_passed():
    core = FeedCore(SETTINGS)
    core.merge_fetch(EPOCH, chunks(90, 109), now=at(99.5))
    assert core.merge_fetch(EPOCH, chunks(100, 119), now=at(115)) == 10
    assert [c.chunk_id for c in core.pending] == list(range(100, 120))
    assert core.ring.latest_id == 99, "only the first answer writes history; the rest is published on schedule"


def test_due_chunks_are_published_in_order_and_a_passed_one_is_dropped():
    core = FeedCore(SETTINGS)
    core.merge_fetch(EPOCH, chunks(95, 105), now=at(99.5))
    assert core.publish_due(at(99.9)) == []
    assert [c.chunk_id for c in core.publish_due(at(102))] == [100, 101, 102]
    assert core.published == 3 and core.ring.latest_id == 102 and core.next_due() == at(103)
    core.pending.appendleft(chunks(101, 101)[0])  # a stale duplicate in front of the queue
    assert [c.chunk_id for c in core.publish_due(at(103))] == [103]
    assert core.published == 4


def test_readiness_needs_the_live_edge_and_enough_ahead():
    core = FeedCore(SETTINGS)
    assert not core.is_ready(at(100)) and core.live_id(at(100)) is None and core.ahead_chunks(at(100)) is None
    core.merge_fetch(EPOCH, chunks(90, 105), now=at(99.5))
    assert core.live_id(at(99.5)) == 99 and core.ahead_chunks(at(99.5)) == 6
    assert not core.is_ready(at(99.5)), "6 ahead, 10 needed"
    core.merge_fetch(EPOCH, chunks(106, 115), now=at(99.6))
    assert core.is_ready(at(99.5))
    core.merge_fetch(EPOCH, chunks(116, 130), now=at(99.7))
    # enough ahead, but publishing has fallen more than READY_MAX_BEHIND_CHUNKS behind the live edge
    late = at(99 + READY_MAX_BEHIND_CHUNKS + 1)
    assert core.ahead_chunks(late) >= SETTINGS.ready_ahead_chunks and not core.is_ready(late)
    core.publish_due(late)
    assert core.is_ready(late)


def test_fetch_pace_and_failures():
    core = FeedCore(SETTINGS)
    assert core.fetch_delay(at(99.5)) == pytest.approx(p.CHUNK_SECONDS), "at the tick's pace until the feed holds audio"
    core.merge_fetch(EPOCH, chunks(90, 120), now=at(99.5))
    assert core.fetch_delay(at(99.5)) == SETTINGS.replica_fetch_interval_sec
    assert [core.fetch_failed() for _ in range(3)] == [1, 2, 3]
    assert core.fetch_delay(at(100)) == pytest.approx(p.CHUNK_SECONDS), "retry at the tick's pace while the station is away"
    status = core.status(at(101))
    assert (status.fetch_failures, status.seconds_since_station_answered) == (3, pytest.approx(0.15))
    core.merge_fetch(EPOCH, [], now=at(102))
    assert core.fetch_failures == 0 and core.fetch_delay(at(102)) == SETTINGS.replica_fetch_interval_sec
    # a restarted station answers, but its new audio has not come yet: 10 ahead, under half the prefetch
    core.merge_fetch(EPOCH, [], now=at(110))
    assert core.fetch_delay(at(110)) == pytest.approx(p.CHUNK_SECONDS)


def test_ticks_are_named_records_of_the_last_minute():
    core = FeedCore(SETTINGS)
    core.merge_fetch(EPOCH, chunks(0, 5), now=at(-1))
    newest = core.publish_due(at(0.02))[-1]
    record = core.record_tick(newest, at(0.02), fanout_ms=1.5, listeners=7)
    assert record == TickRecord(chunk_id=0, published_at=at(0.02), publish_lateness_ms=pytest.approx(2.0),
                                fanout_ms=1.5, listeners=7)
    for _ in range(TICK_HISTORY):
        core.record_tick(newest, at(0.02), 0.0, 0)
    assert len(core.ticks) == TICK_HISTORY == 600 and record not in core.ticks


def test_status_reports_the_feed():
    core = FeedCore(SETTINGS)
    core.merge_fetch(EPOCH, chunks(90, 115), now=at(99.5))
    core.publish_due(at(100))
    status = core.status(at(100))
    assert (status.live_chunk_id, status.latest_published, status.ready, status.ahead_chunks,
            status.published_chunks) == (100, 100, True, 15, 1)


def test_a_feed_with_compressed_listeners_fetches_the_forms_its_waiting_chunks_lack():
    """A replica's first compressed listener: the chunks waiting ahead were fetched without compressed
    forms; the next fetches start at the first of them, at the tick's pace, until every one has them."""
    core = FeedCore(SETTINGS)
    core.merge_fetch(EPOCH, chunks(90, 120), now=at(99.5))
    assert core.fetch_after() == 120 and core.fetch_after(compressed=True) == 99  # 100 waits, without forms
    assert core.fetch_delay(at(99.5), compressed=True) == pytest.approx(p.CHUNK_SECONDS)
    pool = AudioChunkPool(2, codecs=CodecSettings(), station="s")
    again = [pool.encode_chunk(c.chunk_id, c.timestamp, c.pcm) for c in chunks(100, 110)]
    for chunk in again:
        pool.compress(chunk)
    core.merge_fetch(EPOCH, again, now=at(99.6))  # the join fetch: up to just past the live edge
    assert all(core.held(c).compressed is not None for c in range(100, 111))
    assert core.fetch_after(compressed=True) == 110 and core.fetch_after() == 120
    rest = [pool.encode_chunk(c.chunk_id, c.timestamp, c.pcm) for c in chunks(111, 120)]
    for chunk in rest:
        pool.compress(chunk)
    core.merge_fetch(EPOCH, rest, now=at(99.7))
    assert core.fetch_after(compressed=True) == 120
    assert core.fetch_delay(at(99.7), compressed=True) == SETTINGS.replica_fetch_interval_sec
