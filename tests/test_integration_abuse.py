"""No client input can stop, slow or corrupt another listener's stream."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
import websockets

from listeners import decode, listen
from waiting import wait_until_async

pytestmark = pytest.mark.integration


async def _never_read(url: str, hold: float) -> None:
    # leaves after `hold` without waiting for the close handshake, which an unread socket delays
    async with websockets.connect(url, max_queue=1, max_size=2**22, close_timeout=0.5) as ws:
        await ws.send(json.dumps({"type": "ping", "timestamp": 0}))
        await asyncio.sleep(hold)  # the abuse itself: connected for `hold` seconds, reading nothing


async def _flap(url: str, times: int) -> None:
    for _ in range(times):
        try:
            async with websockets.connect(url, open_timeout=5):
                pass
        except (OSError, websockets.WebSocketException):
            pass


GARBAGE = [b"\x00" * 3000, "{", '{"type": 1}', "[" * 3000, "é" * 3000]


async def _garbage(url: str) -> int:
    """Sends invalid messages and stays until the server has answered each one; returns the answers."""
    async with websockets.connect(url, max_size=2**22) as ws:
        for payload in GARBAGE:
            await ws.send(payload)
        answered = 0
        while answered < len(GARBAGE):
            kind, message, *_ = decode(await asyncio.wait_for(ws.recv(), 10))
            answered += kind == "error" and message["error_code"] == "INVALID_MESSAGE"
    return answered


async def _handshake_status(url: str) -> int | None:
    """The HTTP status of a refused WebSocket handshake (None: it was accepted)."""
    try:
        async with websockets.connect(url, open_timeout=10):
            return None
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def _control_without_token(http_url: str) -> list[int]:
    async with httpx.AsyncClient(base_url=http_url) as http:
        return [(await http.post("/api/stations/default/control", json={"bpm": 200})).status_code for _ in range(5)]


async def test_good_listeners_unaffected_by_abusive_clients(auralis_server):
    good = [listen(auralis_server.audio_url(f"good{i}", format="binary" if i % 2 else "json"), 14.0)
            for i in range(3)]
    abuse = [
        *(_never_read(auralis_server.audio_url(f"stall{i}"), 10.0) for i in range(20)),
        _flap(auralis_server.audio_url("flap"), 100),
        *(_garbage(auralis_server.audio_url(f"junk{i}")) for i in range(3)),
        _control_without_token(auralis_server.http_url),
    ]
    for bad_id in BAD_CLIENT_IDS:
        abuse.append(_handshake_status(f"{auralis_server.ws_url}/ws/audio/{bad_id}"))
    results = await asyncio.gather(*good, *abuse)
    for rec in results[:3]:
        assert rec.unannounced_gaps() == 0 and not rec.errors("BUFFER_OVERRUN")
        assert rec.underruns(prebuffer_ms=500) == 0
        assert len(rec.order) >= 135
    assert results[-7:-4] == [len(GARBAGE)] * 3, "every invalid message is answered"
    assert results[-4] == [401] * 5
    assert results[-3:] == [403] * 3, "a bad client_id is refused at the handshake"


BAD_CLIENT_IDS = ("a%20b", "x" * 65, "semi;colon")


async def test_bad_requests_get_a_reason_and_change_nothing(auralis_server):
    for query in ({"format": "flac"}, {"buffer_tier": "huge"}, {"resume_from": "-5"}, {"resume_from": "soon"}):
        refused = await listen(auralis_server.audio_url("asks-wrong", **query), 5.0)
        assert refused.errors("INVALID_MESSAGE") and refused.close_code == 1008, query
    token = {"authorization": f"Bearer {auralis_server.control_token}"}
    async with httpx.AsyncClient(base_url=auralis_server.http_url, timeout=10) as http:
        assert (await http.post("/api/admin/drain", json={"period": 0})).status_code == 401
        odd = await http.post("/api/admin/drain", json={"period": 0}, headers={"authorization": b"Bearer \xe9t\xe9"})
        assert odd.status_code == 401, "a token that is not ASCII is a wrong token"
        for body in (b"[1]", b'{"period": -1}', b'{"period": 1e9}', b'{"final": "yes"}', b"{"):
            bad = await http.post("/api/admin/drain", content=body, headers=token)
            assert bad.status_code == 400 and "period" in bad.json()["error"], body
        assert (await http.post("/api/debug/drop/nobody")).status_code == 401
        assert (await http.post("/api/debug/drop/nobody", headers=token)).status_code == 404
        control = "/api/stations/default/control"
        assert (await http.post("/api/stations/nowhere/control", json={"bpm": 60}, headers=token)).status_code == 404
        for body in (b"{", b"{}", b"[]"):
            bad = await http.post(control, content=body, headers=token)
            assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "(body)", body
        assert (await http.get("/readyz")).status_code == 200, "no refused drain took effect"
    after = await listen(auralis_server.audio_url("after-the-refusals", format="binary"), 2.0)
    assert after.established and len(after.order) >= 10 and after.unannounced_gaps() == 0


def _tiny_receive_window_socket(http_url: str) -> socket.socket:
    """A client socket that stops reading: its small receive window makes the server's send block."""
    host, port = http_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


async def test_stalled_listener_is_disconnected_and_released(auralis_server):
    """A listener whose socket stops draining: once the buffers between it and the replica are full
    (the socket's kernel send buffer, held to `concurrency.websocket_send_buffer_bytes`, and the
    replica's backlog: about 2 s of PCM) its sends block, it is skipped forward, then disconnected
    after the stall timeout (4 s in tests) and forgotten."""
    sock = _tiny_receive_window_socket(auralis_server.http_url)
    async with websockets.connect(auralis_server.audio_url("stuck"), sock=sock, max_queue=1, max_size=2**22,
                                  close_timeout=0.5):  # the server's close waits behind unread audio
        async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
            async def listed() -> bool:
                details = (await http.get("/api/metrics")).json()["listener_details"]
                return "stuck" in {d["client_id"] for d in details}

            async def forgotten() -> bool:
                return not await listed()

            await wait_until_async(listed, 10.0, "the listener that never reads to be registered", poll=0.2)
            await wait_until_async(forgotten, 90.0, "the server to disconnect a listener that never reads", poll=1.0)


async def test_overload_refuses_new_clients_and_keeps_existing(auralis_server):
    async with httpx.AsyncClient(base_url=auralis_server.http_url) as http:
        limit = (await http.get("/api/status")).json()["max_concurrent_clients"]
        current = (await http.get("/api/status")).json()["listeners"]
    holders = []
    try:
        for i in range(limit - current):
            holders.append(await websockets.connect(auralis_server.audio_url(f"hold{i}", format="binary"),
                                                    max_size=2**22))
        refused = await listen(auralis_server.audio_url("one-too-many"), 2.0)
        assert refused.errors("SERVER_OVERLOAD") and refused.close_code == 1013
        frames = [decode(await asyncio.wait_for(holders[0].recv(), 2)) for _ in range(15)]
        ids = [chunk_id for kind, _, chunk_id, *_ in frames if kind == "audio"]
        assert len(ids) >= 12 and ids == list(range(ids[0], ids[0] + len(ids))), "the holders' audio goes on"
    finally:
        await asyncio.gather(*(h.close() for h in holders), return_exceptions=True)
