"""The relay-free front door: the client_id registry (pure) and the shared port (real uvicorn, real sockets)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auralis_ray.serve.local import FREE_PORTS, free_port
from auralis_ray.serve.shared_port import (SharedPort, bind_shared, door_config, open_when_ready, reuseport_supported,
                                           wait_for_serve_server)
from auralis_ray.stream.registry import ClientIdRegistry
from waiting import wait_until_async

pytestmark = pytest.mark.realtime

# ---- client_id registry ---------------------------------------------------------------------------


def test_a_claim_on_another_replica_evicts_exactly_the_older_socket():
    registry = ClientIdRegistry()
    assert registry.update("a", [("dup", 1, 0.0)], [], now=0.0) == []
    assert registry.update("b", [("dup", 7, 1.0)], [], now=1.0) == ["a"]
    assert registry.take_evictions("a", now=1.1) == [("dup", 1)]
    assert registry.take_evictions("a", now=1.2) == [], "an eviction is handed out once"
    assert registry.take_evictions("b", now=1.2) == []
    assert registry.holders["dup"] == ("b", 7, 1.0)


def test_the_later_connection_wins_even_when_its_claim_arrives_first():
    """Replicas send claims in batches: a reconnect 10 ms later can reach the registry first."""
    registry = ClientIdRegistry()
    assert registry.update("b", [("dup", 7, 10.01)], [], now=10.02) == []
    assert registry.update("a", [("dup", 1, 10.00)], [], now=10.05) == ["a"]
    assert registry.take_evictions("a", now=10.1) == [("dup", 1)], "the older socket goes, not the newer"
    assert registry.take_evictions("b", now=10.1) == []
    assert registry.holders["dup"] == ("b", 7, 10.01)


def test_the_same_replica_reconnecting_is_its_own_business():
    registry = ClientIdRegistry()
    registry.update("a", [("x", 1, 0.0)], [], now=0.0)
    assert registry.update("a", [("x", 2, 1.0)], [], now=1.0) == []
    assert registry.take_evictions("a", now=1.0) == []
    assert registry.holders["x"] == ("a", 2, 1.0)


def test_a_stale_release_does_not_free_a_newer_holder():
    registry = ClientIdRegistry()
    registry.update("a", [("x", 1, 0.0)], [], now=0.0)
    registry.update("b", [("x", 5, 0.5)], [], now=0.5)
    registry.update("a", [], [("x", 1)], now=1.0)  # a's old socket ended after b took the id
    assert registry.holders["x"] == ("b", 5, 0.5)
    registry.update("b", [], [("x", 5)], now=2.0)
    assert "x" not in registry.holders


def test_a_silent_replica_is_forgotten_with_its_ids():
    registry = ClientIdRegistry(owner_timeout_sec=10.0)
    registry.update("gone", [("x", 1, 0.0), ("y", 2, 0.0)], [], now=0.0)
    registry.update("alive", [("z", 3, 5.0)], [], now=5.0)
    assert registry.prune(now=12.0) == ["gone"]
    assert set(registry.holders) == {"z"}
    assert registry.update("alive", [("x", 4, 13.0)], [], now=13.0) == [], "no eviction for a replica that is gone"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["claim", "release"]), st.sampled_from("xyz")),
                max_size=60))
def test_registry_agrees_with_a_model(operations):
    """Every socket superseded from another replica is evicted once; the holder is the newest claim."""
    registry = ClientIdRegistry()
    holder: dict[str, tuple[str, int, float]] = {}  # sockets connect in operation order
    live: dict[tuple[str, str], int] = {}  # (owner, client_id) -> generation of that owner's open socket
    expected: dict[str, list] = {o: [] for o in "abc"}
    for generation, (owner, action, cid) in enumerate(operations):
        if action == "claim":
            previous = holder.get(cid)
            if previous is not None and previous[0] != owner:
                expected[previous[0]].append((cid, previous[1]))
            holder[cid] = (owner, generation, float(generation))
            live[(owner, cid)] = generation
            registry.update(owner, [(cid, generation, float(generation))], [], now=0.0)
        elif (owner, cid) in live:
            old = live.pop((owner, cid))
            if holder.get(cid) == (owner, old, float(old)):
                del holder[cid]
            registry.update(owner, [], [(cid, old)], now=0.0)
    assert registry.holders == holder
    for owner in "abc":
        assert registry.take_evictions(owner, now=0.0) == expected[owner]


# ---- the shared port --------------------------------------------------------------------------------

needs_reuseport = pytest.mark.skipif(not reuseport_supported(), reason="needs SO_REUSEPORT")


def named_app(name: str):
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": name.encode()})
    return app


def plain_config(app):
    import uvicorn

    return uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning", log_config=None)


async def answers(port: int, requests: int) -> list[str]:
    """Who answers each of `requests` new connections (no keep-alive: each is a fresh connection)."""
    out = []
    for _ in range(requests):
        async with httpx.AsyncClient(timeout=5) as http:
            try:
                out.append((await http.get(f"http://127.0.0.1:{port}/")).text)
            except httpx.ConnectError:
                out.append("refused")
    return out


@needs_reuseport
def test_two_sockets_bind_one_port():
    port = free_port()
    first, second = bind_shared("127.0.0.1", port), bind_shared("127.0.0.1", port)
    try:
        assert first.getsockname()[1] == second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


@contextlib.asynccontextmanager
async def open_doors(*names: str):
    """One shared port with a door open for each name (each answering its name): (port, doors)."""
    port = free_port()
    doors = [SharedPort("127.0.0.1", port) for _ in names]
    for door, name in zip(doors, names):
        await door.open(plain_config(named_app(name)))
    try:
        yield port, doors
    finally:
        for door in doors:
            door.close()
            door.server.should_exit = True
        await asyncio.gather(*(door.task for door in doors))


@needs_reuseport
async def test_the_kernel_spreads_connections_and_a_closed_door_gets_none():
    async with open_doors("one", "two") as (port, (one, two)):
        assert set(await answers(port, 64)) == {"one", "two"}
        one.close()
        assert not one.is_open and two.is_open
        assert set(await answers(port, 32)) == {"two"}, "a replica that drains gets no new listener"


@needs_reuseport
async def test_a_closed_door_sees_whether_another_replica_accepts():
    async with open_doors("leaving", "staying") as (_port, (leaving, staying)):
        leaving.close()
        assert await leaving.another_accepts(), "the other replica's door is open"
        staying.close()
        assert not await leaving.another_accepts(), "no door is open"


@needs_reuseport
async def test_a_door_closed_while_it_starts_never_accepts():
    port = free_port()
    door = SharedPort("127.0.0.1", port)
    opening = asyncio.create_task(door.open(plain_config(named_app("late"))))
    await asyncio.sleep(0)  # the server is starting
    door.close()  # a drain begins meanwhile
    await asyncio.wait_for(opening, 5)
    try:
        assert not door.is_open and await answers(port, 3) == ["refused"] * 3
    finally:
        door.server.should_exit = True
        await door.task


@needs_reuseport
async def test_the_door_opens_only_once_the_replica_is_ready():
    port = free_port()
    ready = asyncio.Event()
    door = SharedPort("127.0.0.1", port)
    asked: list[bool] = []  # each answer the opener got to "is the replica ready?"

    def is_ready() -> bool:
        asked.append(ready.is_set())
        return asked[-1]

    serve_server = await wait_for_serve_server(timeout=0.1)
    assert serve_server is None, "no Serve server in this process"
    opening = asyncio.create_task(open_when_ready(door, door_config(serve_server, named_app("app")), is_ready,
                                                  ready_timeout=30.0))
    await wait_until_async(lambda: len(asked) >= 2, 5.0, "the opener to ask twice whether the replica is ready")
    assert await answers(port, 1) == ["refused"] and not door.is_open
    ready.set()
    await asyncio.wait_for(opening, 5)
    try:
        assert door.is_open and await answers(port, 3) == ["app"] * 3
    finally:
        door.close()
        door.server.should_exit = True
        await door.task


def test_free_ports_lie_where_neither_ray_nor_the_kernel_picks_and_skip_one_in_use():
    picked = [free_port() for _ in range(3)]
    assert len(set(picked)) == 3 and all(20000 <= port < 30000 for port in picked)
    following = [FREE_PORTS[(FREE_PORTS.index(picked[-1]) + step) % len(FREE_PORTS)] for step in (1, 2)]
    busy = bind_shared("127.0.0.1", following[0])  # the next in line is taken
    busy.listen()
    try:
        assert free_port() == following[1]
    finally:
        busy.close()
