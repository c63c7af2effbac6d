"""End to end through real Ray actors, Ray Serve and real WebSocket clients (PROTOCOL.md)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from listeners import CHUNK_BYTES, listen, listening, playing, rms
from waiting import wait_until_async

pytestmark = pytest.mark.integration


async def test_ten_listeners_hear_the_same_consecutive_non_silent_audio(auralis_server):
    ids = {f"l{i}" for i in range(10)}
    urls = [auralis_server.audio_url(f"l{i}", format="binary" if i % 2 else "json") for i in range(10)]
    recordings = asyncio.gather(*(listen(u, 12.0, f"l{i}") for i, u in enumerate(urls)))
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        async def ours() -> list[dict] | None:
            details = (await http.get("/api/metrics")).json()["listener_details"]
            found = [d for d in details if d["client_id"] in ids]
            return found if len(found) == len(ids) else None

        found = await wait_until_async(ours, 10.0, "all 10 listeners in /api/metrics", poll=0.2)
    recs = await recordings
    assert all(d["direct_writes"] for d in found), "audio must take the direct-write path"
    for rec in recs:
        assert rec.established["buffer_config"]["sample_rate"] == 44100
        assert rec.first_audio_at - rec.opened_at < 2.0
        assert rec.order == list(range(rec.order[0], rec.order[0] + len(rec.order))), "ids must be consecutive"
        assert len(rec.order) >= 115  # 10-chunk burst + ~12 s live
        assert all(len(pcm) == CHUNK_BYTES for pcm in rec.chunks.values())
        assert rec.underruns(prebuffer_ms=500) == 0
        assert rms(b"".join(rec.chunks.values())) > 0.01, "audio must not be silent"
        statuses = rec.of_type("buffer_status")
        assert statuses and statuses[-1]["performance"]["chunks_sent"] > 50
    common = set.intersection(*(set(r.chunks) for r in recs))
    assert len(common) >= 100
    for cid in common:
        assert len({r.chunks[cid] for r in recs}) == 1, f"chunk {cid} differs between listeners"


async def test_live_chunks_arrive_on_schedule(auralis_server):
    rec = await listen(auralis_server.audio_url("sched", format="binary"), 6.0)
    live = [(a - t) * 1000 for a, t in zip(rec.arrivals[12:], rec.timestamps[12:])]
    assert live and sorted(live)[int(len(live) * 0.95)] < 50


async def test_bad_client_id_is_refused_at_handshake(auralis_server):
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(f"{auralis_server.ws_url}/ws/audio/bad%20id"):
            pass
    assert info.value.response.status_code == 403


async def test_unknown_station(auralis_server):
    rec = await listen(auralis_server.audio_url("u1", station="nowhere"), 3.0)
    assert rec.errors("UNKNOWN_STATION") and rec.close_code == 1008


async def test_invalid_messages_do_not_stop_the_stream(auralis_server):
    junk = ["not json", '{"type":"dance"}', '{"type":"ping"}', "x" * 5000, b"\x00\xff"]
    rec = await listen(auralis_server.audio_url("junk"), 3.0, send=junk)
    assert len(rec.errors("INVALID_MESSAGE")) == len(junk)
    assert len(rec.order) >= 30 and rec.close_code is None


async def test_too_many_invalid_messages_close_1008(auralis_server):
    rec = await listen(auralis_server.audio_url("spam"), 3.0, send=["nope"] * 12)
    assert rec.close_code == 1008


async def test_ping_buffer_control_and_subprotocol(auralis_server):
    async with websockets.connect(auralis_server.audio_url("ctl"), subprotocols=["auralis-v1"]) as ws:
        assert ws.subprotocol == "auralis-v1"
        await ws.send(json.dumps({"type": "ping", "timestamp": 42.5}))
        await ws.send(json.dumps({"type": "buffer_control", "requested_tier": "stable", "timestamp": 1}))
        seen = {}
        for _ in range(60):
            frame = await asyncio.wait_for(ws.recv(), 5)
            message = json.loads(frame)
            seen.setdefault(message["type"], message)
            if "pong" in seen and "buffer_control_ack" in seen and seen.get("audio", {}).get(
                    "current_tier") == "stable" and message["type"] == "audio" and message["current_tier"] == "stable":
                break
        assert seen["pong"]["client_timestamp"] == 42.5
        assert seen["buffer_control_ack"]["previous_tier"] == "normal"
        assert seen["buffer_control_ack"]["new_tier"] == "stable"


async def test_resume_from_continues_without_gap(auralis_server):
    first = await listen(auralis_server.audio_url("res", format="binary"), 2.0)
    last = first.order[-1]
    await asyncio.sleep(1.0)  # the scenario: away for 10 chunks, which the server still holds
    second = await listen(auralis_server.audio_url("res", format="binary", resume_from=last), 2.0)
    assert second.order[0] == last + 1 and not second.errors("BUFFER_OVERRUN")
    assert second.chunks[last + 1] != first.chunks[last]
    stale = await listen(auralis_server.audio_url("res2", resume_from=3), 1.5)
    assert stale.errors("BUFFER_OVERRUN")[0]["severity"] == "warning"


async def test_duplicate_client_id_replaces_the_older_socket(auralis_server):
    url = auralis_server.audio_url("dup")
    older = await listening(url, 6.0)
    newer = await listen(url, 3.0)
    old = await older
    assert old.close_code == 4000 and not newer.errors()
    assert len(newer.order) >= 10 + 15, "the burst, then the newer socket goes on in real time"
    assert newer.order == list(range(newer.order[0], newer.order[0] + len(newer.order)))


async def test_http_endpoints(auralis_server):
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        status = (await http.get("/api/status")).json()
        assert {s["name"] for s in status["stations"]} == set(auralis_server.stations)
        assert status["device"]["device_type"] == "cpu" and status["version"]
        stations = (await http.get("/api/stations")).json()["stations"]
        assert {"key", "mode", "bpm", "intensity"} <= set(stations[0]["params"])
        metrics = (await http.get("/api/metrics")).json()
        feed = metrics["feeds"]["default"]
        assert feed["published_chunks"] > 0
        assert 0 <= feed["fanout_ms_p50"] <= feed["fanout_ms_max"]
        slowest = feed["slowest_ticks"]
        keys = {"chunk_id", "published_at", "publish_lateness_ms", "fanout_ms", "listeners"}
        assert slowest and keys <= set(slowest[0])
        assert metrics["gc"]["frozen_objects"] > 0, "the replica's start-up heap is frozen"
        assert len(metrics["gc"]["max_pause_ms"]) == 3


async def test_station_control_needs_token_and_valid_values(auralis_server):
    headers = {"Authorization": f"Bearer {auralis_server.control_token}"}
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        before = (await http.get("/api/stations")).json()["stations"]
        assert (await http.post("/api/stations/night/control", json={"bpm": 60})).status_code == 401
        assert (await http.post("/api/stations/night/control", json={"bpm": 60},
                                headers={"Authorization": "Bearer wrong"})).status_code == 401
        bad = await http.post("/api/stations/night/control", json={"bpm": 0, "intensity": 7}, headers=headers)
        assert bad.status_code == 422
        assert {d["field"] for d in bad.json()["detail"]} >= {"bpm", "intensity"}
        assert (await http.post("/api/stations/night/control", json={"key": "H"}, headers=headers)).status_code == 422
        unchanged = (await http.get("/api/stations")).json()["stations"]
        assert unchanged == before
        ok = await http.post("/api/stations/night/control", json={"key": "D", "mode": "dorian"}, headers=headers)
        assert ok.status_code == 200 and ok.json()["params"]["key"] == "D"
        after = {s["name"]: s["params"] for s in (await http.get("/api/stations")).json()["stations"]}
        assert after["night"]["mode"] == "dorian"
        assert after["default"] == {s["name"]: s["params"] for s in before}["default"]


async def test_the_station_actor_of_both_stations_killed_listeners_of_each_play_on(auralis_server):
    """One process holds both stations (server.station_actors = 1): killed, it restarts both at the
    right chunk while the replicas play what they prefetched; a restart that outlasts the prefetch (on
    a busy machine) skips what it missed, announced."""
    import ray

    group = await playing([(auralis_server.audio_url(f"grp{i}", format="binary", station=station), f"grp{i}")
                           for i, station in enumerate(["default", "night"] * 2)], 20.0)
    actor = ray.get_actor("stations-0", namespace="auralis")
    assert sorted(await actor.stations.remote()) == ["default", "night"]
    ray.kill(actor, no_restart=False)
    await wait_until_async(lambda: _answers(actor), 30.0, "the station actor to come back", poll=0.2)
    for session in await group.until_on_schedule(time.time()):
        assert session.unannounced_gaps() == 0 and session.underruns(prebuffer_ms=500) == 0
        assert session.order == sorted(set(session.order))
        assert session.arrivals[-1] - session.timestamps[-1] < 0.5, "back at the live edge"


async def _answers(actor) -> bool:
    try:
        return await asyncio.wait_for(actor.ping.remote(), 1.0) == "ok"
    except Exception:
        return False


async def test_rolling_update_warns_listeners_who_resume_without_gap(auralis_server):
    """Runs last in this module: it replaces the ingress replica (same stations, same epoch)."""
    from ray import serve

    from auralis_ray.serve.app import build_app

    urls = [auralis_server.audio_url(f"roll{i}", format="binary" if i % 2 else "json") for i in range(5)]
    group = await playing([(u + ("&" if "?" in u else "?") + "station=default", f"roll{i}")
                           for i, u in enumerate(urls)], 30.0)
    overrides = auralis_server.overrides
    new_version = {**overrides, "server": {**overrides["server"], "revision": "2"}}  # a new revision: a new version
    await asyncio.to_thread(serve.run, build_app(new_version), name="auralis", route_prefix="/")
    await wait_until_async(lambda: all(s.reconnects for s in group.sessions), 20.0,
                           "every listener to move to the new version's replica")
    sessions = await group.until_on_schedule(time.time())
    for session in sessions:
        assert session.of_type("shutdown_warning"), "the replaced replica must warn its listeners"
        assert session.reconnects and session.unannounced_gaps() == 0
        assert session.order == sorted(set(session.order))
        assert session.arrivals[-1] - session.timestamps[-1] < 0.5, "back at the live edge"
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        assert (await http.get("/api/status")).json()["revision"] == "2", "the new version serves"
