"""The replica's adapters without Ray: feeds, fan-out and listeners (serve/hub.py, serve/listener.py)
and the lifecycle (serve/lifecycle.py), around a fake station actor and fake sockets."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
import uvicorn

from auralis_ray.config import load_config
from auralis_ray.core_settings import session_settings
from auralis_ray.monitor.metrics import PerformanceMetrics
from auralis_ray.serve.direct import DirectWriter
from auralis_ray.serve import claims as claims_module
from auralis_ray.serve.claims import ClaimSync
from auralis_ray.serve.hub import LONGEST_BURST_CHUNKS, ListenerHub
from auralis_ray.serve.listener import report_failures
from auralis_ray.serve.lifecycle import ReplicaLifecycle
from auralis_ray.serve.local import free_port
from auralis_ray.serve.shared_port import SharedPort, bind_shared
from auralis_ray.stream import protocol as p
from auralis_ray.stream.client import ClientSession, Closing
from auralis_ray.stream.pool import AudioChunkPool
from auralis_ray.stream.schedule import live_chunk_id, publish_time
from fake_transport import FakeTransport
from waiting import wait_until_async

pytestmark = pytest.mark.realtime

SILENCE = np.zeros(p.SAMPLES_PER_CHUNK, dtype="<i2").tobytes()


class Method:
    """`handle.method.remote(...)` of an actor handle: an awaitable answer."""

    def __init__(self, answer):
        self.answer = answer

    def remote(self, *args):
        return self.answer(*args)


class FakeStation:
    """A station actor: a live timeline started 5 s ago, fetched the way StationActor.fetch answers."""

    def __init__(self):
        self.epoch = round(time.time() - 5.0, 3)
        self.pool = AudioChunkPool(2)
        self.fetch = Method(self._fetch)
        self.info = Method(self._info)
        self.compressed_fetches: list[tuple[int, int]] = []  # (after, the live edge) of each asking for them

    async def _fetch(self, station: str, after: int, prefetch: int, compressed: bool = True) -> dict:
        live = live_chunk_id(self.epoch, time.time())
        if compressed:
            self.compressed_fetches.append((after, live))
        first = max(after + 1, live - 20)
        return {"epoch": self.epoch, "chunks": [self.pool.encode_chunk(cid, publish_time(self.epoch, cid), SILENCE)
                                                .to_transfer() for cid in range(first, live + prefetch + 1)]}

    async def _info(self, station: str) -> dict:
        return {"name": "s", "params": {"bpm": 60}}


@pytest.fixture
async def hub():
    config = load_config(concurrency={"max_concurrent_clients": 3, "stalled_client_timeout_sec": 0.5,
                                      "drain_timeout_sec": 1.0},
                         buffer={"ready_ahead_chunks": 5})
    hub = ListenerHub(config, {"s": FakeStation()}, PerformanceMetrics("ingress"))
    hub.start()
    feed = hub.feed("s")
    assert await feed.wait_for_audio(5.0)
    await wait_until_async(lambda: hub.is_ready(time.time()), 5.0, "the feed to be ready")
    yield hub
    await hub.stop()


def listen(hub: ListenerHub, client_id: str, writer: DirectWriter | None = None, fmt: str = "binary"):
    feed = hub.feed("s")
    session = ClientSession(client_id=client_id, station="s", fmt=fmt, ring=feed.ring,
                            settings=session_settings(hub.config), now=time.time(), server_version="t")
    session.open(time.time())
    return hub.register(feed, session, writer)


def errors(hub: ListenerHub, kind: str) -> float:
    counters = hub.metrics.snapshot()["counters"].get("websocket_send_errors_total", [])
    return sum(c["value"] for c in counters if c["labels"].get("error_type") == kind)


async def test_status_objects_describe_the_replica(hub):
    listen(hub, "a")
    readiness = hub.readiness(time.time())
    assert readiness.ready and readiness.stations == {"s": True}
    (station,) = hub.station_statuses(time.time())
    assert station.name == "s" and station.listeners == 1 and station.feed.ready
    assert station.feed.latest_published <= station.feed.live_chunk_id + 1 and station.feed.ahead_chunks >= 5
    stats = hub.listener_stats()
    assert (stats.listeners, stats.max_listeners, stats.replaced_from_other_replicas) == (1, 3, None)
    assert await hub.station_infos() == {"s": {"name": "s", "params": {"bpm": 60}}}
    feed = hub.feed("s")
    summary = await wait_until_async(lambda: feed.tick_summary()["slowest_ticks"] and feed.tick_summary(), 2.0,
                                     "a publish tick")
    assert summary["fanout_ms_max"] >= summary["fanout_ms_p50"] >= 0 and summary["slowest_ticks"]


async def test_an_idle_feed_publishes_in_batches_and_is_at_the_live_edge_for_its_next_listener(hub):
    feed = hub.feed("s")
    published = feed.core.published
    await wait_until_async(lambda: feed.core.published - published >= 8, 3.0, "chunks to keep moving into the ring")
    assert not feed.core.ticks, "no fan-out tick without a listener"
    assert hub.is_ready(time.time())
    assert await feed.wait_for_audio(1.0)
    assert feed.ring.latest_id == live_chunk_id(feed.core.epoch, time.time())  # a joining listener starts live


async def test_a_compressed_join_with_an_old_resume_point_asks_for_no_more_than_a_burst(hub):
    feed = hub.feed("s")
    station = feed.station
    assert await feed.wait_for_audio(1.0, compressed=True, resume_from=0)
    after, live = station.compressed_fetches[0]
    assert live - LONGEST_BURST_CHUNKS - 1 <= after < live, "not the whole ring from chunk 0"


async def test_a_feed_stops_though_a_join_has_just_woken_its_fetch_loop(hub):
    feed = hub.feed("s")
    assert await feed.wait_for_audio(1.0, compressed=True)  # the compressed fetch wakes the fetch loop
    async with asyncio.timeout(5):
        await feed.stop()  # the wake and the cancel come together: the cancel must win


async def test_one_broken_listener_is_closed_and_the_others_go_on(hub):
    good, broken = listen(hub, "good"), listen(hub, "broken")

    def pump(now):
        raise RuntimeError("a bug in one listener")

    broken.session.pump = pump
    await wait_until_async(lambda: broken.session.closing is not None, 2.0, "the broken listener to be closed")
    assert broken.session.closing == Closing(p.CloseCode.POLICY_VIOLATION, "internal error")
    assert errors(hub, "internal") >= 1
    good.session.take_frames(time.time())
    published = hub.feed("s").ring.latest_id
    await wait_until_async(lambda: hub.feed("s").ring.latest_id > published + 1, 2.0, "two more ticks")
    assert good.session.closing is None and good.wake.is_set()
    assert any(isinstance(f, bytes) for f in good.session.take_frames(time.time())), "audio still reaches the good one"


async def test_direct_writes_take_the_common_tick_and_stall_on_a_full_socket(hub):
    transport = FakeTransport()
    listener = listen(hub, "direct", DirectWriter(transport, backlog_limit=1000, send_buffer_bytes=4096))
    listener.flush(time.time())  # connection_established and the opening burst
    burst = len(transport.written)
    await wait_until_async(lambda: len(transport.written) > burst + 1, 2.0, "chunks written by the tick")
    assert not listener.session.is_busy
    transport.backlog = 5000  # the listener stopped reading
    await wait_until_async(lambda: transport.aborted, 3.0, "the stalled listener to be cut off")
    assert listener.session.closing.reason == "listener stalled" and errors(hub, "stalled") == 1


async def test_a_newer_socket_replaces_the_older_and_evictions_name_their_generation(hub):
    first = listen(hub, "dup")
    second = listen(hub, "dup")
    assert first.session.closing.code == p.CloseCode.REPLACED and second.generation > first.generation
    assert not hub.evict("dup", first.generation), "an eviction of the replaced socket leaves the newer one"
    assert second.session.closing is None
    assert hub.evict("dup", second.generation) and second.session.closing.code == p.CloseCode.REPLACED
    assert hub.listener_count == 0


async def test_capacity_counts_a_reconnect_as_no_new_listener(hub):
    for name in "abc":
        listen(hub, name)
    assert not hub.has_room_for("d") and hub.has_room_for("a")


class Door:
    """A shared-port door: open until closed."""

    is_open = True
    closed = False

    def close(self) -> None:
        self.is_open, self.closed = False, True


async def test_a_drain_warns_keeps_streaming_then_closes_1012(hub):
    listeners = [listen(hub, name, fmt="json") for name in "ab"]
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0)
    draining = asyncio.create_task(lifecycle.drain("planned shutdown", 0.3))
    await wait_until_async(lambda: lifecycle.draining, 1.0, "the drain to begin")
    for listener in listeners:
        kinds = [json.loads(f)["type"] for f in listener.session.take_frames(time.time())]
        assert "shutdown_warning" in kinds and listener.session.closing is None
    assert await lifecycle.drain("again", 0.1) == 0, "one drain at a time"
    assert await draining == 2
    closing = Closing(p.CloseCode.SERVICE_RESTART, "planned shutdown")
    assert all(listener.session.closing == closing for listener in listeners)
    assert not lifecycle.draining, "an operator's drain accepts listeners again after"


async def test_a_listener_that_got_in_after_a_final_drain_began_is_drained_at_stop(hub):
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0)
    assert await lifecycle.drain("replica shutting down", 0.1, final=True) == 0
    late = listen(hub, "late")  # passed the checks before the drain began, and registered after
    assert await lifecycle.drain("replica shutting down", 0.1, final=True) == 1, "the stop's drain takes it"
    assert late.session.closing == Closing(p.CloseCode.SERVICE_RESTART, "replica shutting down")
    assert lifecycle.draining, "and new listeners stay refused"


async def test_a_final_drain_closes_the_door_and_keeps_refusing(hub):
    listen(hub, "a")
    door = Door()
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0, shared_door=door)
    assert lifecycle.status().shared_port_open
    assert await lifecycle.drain("replica shutting down", 0.05, final=True) == 1
    assert door.closed and lifecycle.draining and not lifecycle.status().shared_port_open


async def test_a_final_drain_during_an_operators_drain_keeps_refusing(hub):
    listen(hub, "a")
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0, shared_door=Door())
    operators = asyncio.create_task(lifecycle.drain("planned shutdown", 0.2))
    await wait_until_async(lambda: lifecycle.draining, 1.0, "the operator's drain to begin")
    assert await lifecycle.drain("replica shutting down", 0.2, final=True) == 0
    await operators
    assert lifecycle.draining, "the replica is going away: it does not accept listeners again"


async def test_the_first_health_check_waits_until_the_shared_port_accepts(hub):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    door = SharedPort("127.0.0.1", free_port())
    lifecycle = ReplicaLifecycle(hub, app=app, drain_timeout_sec=1.0, shared_door=door, find_server_timeout_sec=0.0)
    lifecycle.start()
    try:
        assert not door.is_open
        await asyncio.wait_for(lifecycle.started(30.0), 10.0)
        assert door.is_open and await door.another_accepts(), "Serve counts the replica once listeners get in"
        await asyncio.wait_for(lifecycle.started(30.0), 1.0)  # later checks answer at once
    finally:
        await lifecycle.stop()
        door.server.should_exit = True
        await door.task


async def test_a_handing_over_drain_keeps_its_listeners_until_another_replica_accepts(hub):
    listener = listen(hub, "a")
    port = free_port()
    door = SharedPort("127.0.0.1", port)  # this replica's door; the final drain closes it
    asked = []
    ask = door.another_accepts

    async def another_accepts() -> bool:
        asked.append(await ask())
        return asked[-1]

    door.another_accepts = another_accepts
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0, shared_door=door)
    draining = asyncio.create_task(lifecycle.drain("replica shutting down", 0.05, final=True, handover_sec=30.0))
    await wait_until_async(lambda: len(asked) >= 3, 5.0, "the drain to ask for a successor three times")
    assert not any(asked) and listener.session.closing is None, "past the drain period it plays on"
    successor = bind_shared("127.0.0.1", port)
    successor.listen()
    try:
        assert await asyncio.wait_for(draining, 5.0) == 1
    finally:
        successor.close()
    assert asked[-1] and listener.session.closing == Closing(p.CloseCode.SERVICE_RESTART, "replica shutting down")


async def test_a_handover_with_no_successor_ends_at_its_limit(hub, caplog):
    listener = listen(hub, "a")
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=1.0,
                                 shared_door=SharedPort("127.0.0.1", free_port()))
    drained = lifecycle.drain("replica shutting down", 0.05, final=True, handover_sec=0.3)
    assert await asyncio.wait_for(drained, 5.0) == 1
    assert listener.session.closing == Closing(p.CloseCode.SERVICE_RESTART, "replica shutting down")
    assert "no other replica accepts on the shared port" in caplog.text


async def test_the_replica_drains_when_its_health_check_says_draining(hub):
    state = {"draining": False, "polls": 0}

    async def health(scope, receive, send):
        state["polls"] += 1
        status, body = (503, b"DRAINING") if state["draining"] else (200, b"success")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(health, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await wait_until_async(lambda: server.started, 5.0, "the health server to start")
    listener = listen(hub, "a")
    door = Door()
    lifecycle = ReplicaLifecycle(hub, app=None, drain_timeout_sec=0.2, shared_door=door)
    health_url = f"http://127.0.0.1:{port}/-/healthz"
    watching = asyncio.create_task(lifecycle.watch_replica_shutdown(health_url, interval=0.05))
    try:
        await wait_until_async(lambda: state["polls"] >= 3, 5.0, "the watch to poll a healthy replica")
        assert not watching.done() and not lifecycle.draining
        state["draining"] = True
        await asyncio.wait_for(watching, 5.0)
        assert door.closed and lifecycle.draining
        assert listener.session.closing == Closing(p.CloseCode.SERVICE_RESTART, "replica shutting down")
    finally:
        server.should_exit = True
        await serving


def test_what_a_listeners_tasks_raised_is_logged_and_counted_and_a_cancel_is_not(caplog):
    metrics = PerformanceMetrics("ingress")
    report_failures([None, asyncio.CancelledError(), ValueError("a bug in on_message")], "c1", metrics)
    assert [r.getMessage() for r in caplog.records] == ["listener c1 failed: ValueError('a bug in on_message')"]
    counters = metrics.snapshot()["counters"]["websocket_send_errors_total"]
    assert [(c["labels"]["error_type"], c["value"]) for c in counters] == [("listener_failed", 1)]


class SilentRegistry:
    """A listener registry that never answers (an actor that is restarting holds the calls)."""

    def __init__(self):
        self.updates = 0
        self.update = Method(self._update)
        self.evictions = Method(self._never)

    async def _update(self, owner, claims, releases):
        self.updates += 1
        await asyncio.Event().wait()

    async def _never(self, *args):
        await asyncio.Event().wait()


async def test_claims_are_sent_again_and_stay_bounded_while_the_registry_does_not_answer(monkeypatch):
    monkeypatch.setattr(claims_module, "UPDATE_TIMEOUT_SEC", 0.05)
    registry = SilentRegistry()
    sync = ClaimSync(registry, "replica-1", lambda *_: None, batch_sec=0.01, retry_sec=0.01, max_pending=5)
    sync.start()
    try:
        for generation in range(100):
            sync.claim(f"c{generation}", generation, 0.0)
        await wait_until_async(lambda: registry.updates >= 3, 5.0, "the update to be sent again")
        assert len(sync.claims) <= 2 * 5, "only the newest claims are held"
    finally:
        await sync.stop()


async def test_status_requests_together_cost_the_station_actor_one_info_call(hub):
    feed = hub.feed("s")
    calls = []
    answer = feed.station.info.answer

    async def counted(*args):
        calls.append(args)
        return await answer(*args)

    feed.station.info.answer = counted
    infos = await asyncio.gather(*(hub.station_infos() for _ in range(50)))
    assert len(calls) == 1 and all(info == infos[0] for info in infos), "requests together share one call"
    await hub.station_infos()
    await feed.station_info(fresh=True)
    assert len(calls) == 3, "a request after the answer asks again, and so does one that needs it fresh"


def test_the_replicas_stats_record_its_memory_and_collections(hub):
    import gc

    gc.collect()
    hub.record_stats()
    snapshot = hub.metrics.snapshot()
    assert snapshot["gauges"]["memory_usage_mb"][0]["value"] > 10, "the replica's RSS is recorded"
    generations = {c["labels"]["generation"]: c["value"] for c in snapshot["counters"]["gc_collections_total"]}
    assert generations.get("2", 0) >= 1, "its full collections are counted"
