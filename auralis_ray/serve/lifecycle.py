"""One ingress replica's start and end: its shared-port door, the watch for its shutdown, the drain.

- `start` finds the server Serve's direct ingress runs on this replica (its own port), watches that
  server's `/-/healthz` for Serve stopping the replica, and opens the shared port once the replica's
  stations are ready.
- `drain` is a graceful shutdown: `shutdown_warning` to every listener, streaming on for the drain
  period, then close 1012. New listeners are refused meanwhile (the audio endpoint asks `draining`).
  A final drain (the replica is going away) first closes the shared port, so new listeners reach the
  other replicas, and keeps refusing afterwards; an operator's drain accepts listeners again after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..stream import protocol as p
from .hub import ListenerHub
from .shared_port import SharedPort, door_config, open_when_ready, serve_address, wait_for_serve_server

log = logging.getLogger(__name__)


class Refusal(Enum):
    """Why the replica turns a new listener away now (each endpoint says it in its own way)."""

    DRAINING = "server is draining; reconnect"
    FULL = "server at capacity; try again later"


@dataclass(frozen=True)
class LifecycleStatus:
    """Where the replica stands: its own port (once known), its shared-port door, whether it drains."""

    replica_port: int | None
    shared_port_open: bool
    draining: bool


class ReplicaLifecycle:
    """Opens the replica's shared-port door once it is ready, drains it on Serve's cue or an
    operator's, and closes what it opened."""

    def __init__(self, hub: ListenerHub, app: Any, *, drain_timeout_sec: float, shared_door: SharedPort | None = None,
                 watch_shutdown: bool = False, find_server_timeout_sec: float = 30.0):
        self.hub = hub
        self.app = app  # what the shared port serves where Serve's own server is not found
        self.drain_timeout_sec = drain_timeout_sec
        self.shared_door = shared_door
        self.watch_shutdown = watch_shutdown  # Serve's direct ingress: its /-/healthz says when it stops us
        self.find_server_timeout_sec = find_server_timeout_sec
        self.server_address: tuple[str, int] | None = None  # this replica's own port, once found
        self.draining = False  # new listeners are refused
        self.drain_running = False  # a drain is under way (a second one while it runs does nothing)
        self.final = False  # a final drain began: the replica is going away
        self._tasks: list[asyncio.Task] = []  # start-up and the shutdown watch, cancelled at stop
        self._drains: set[asyncio.Task] = set()  # drains run to their end

    # ---- start ----------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the start-up in the background: find this replica's own server, watch it for the
        replica's shutdown, open the shared port once the stations are ready."""
        if not self._tasks and (self.watch_shutdown or self.shared_door is not None):
            self._tasks.append(asyncio.create_task(self._start_up()))

    async def _start_up(self) -> None:
        serve_server = await wait_for_serve_server(self.find_server_timeout_sec)
        if serve_server is not None:
            self.server_address = serve_address(serve_server)
        if self.watch_shutdown and self.server_address is not None:
            host, port = self.server_address
            self._tasks.append(asyncio.create_task(self.watch_replica_shutdown(f"http://{host}:{port}/-/healthz")))
        if self.shared_door is not None:
            await open_when_ready(self.shared_door, door_config(serve_server, self.app),
                                  lambda: self.hub.is_ready(time.time()))

    # ---- end ------------------------------------------------------------------------------

    def close_doors(self) -> None:
        """Stop accepting on the shared port (open sockets stay as they are)."""
        if self.shared_door is not None:
            self.shared_door.close()

    async def drain(self, reason: str, period: float, final: bool = False) -> int:
        """`shutdown_warning` to every listener, keep streaming for `period`, then close them (1012);
        return how many were drained (0: a drain was already under way)."""
        if final:
            self.final = True
            self.close_doors()
        if self.drain_running:
            return 0
        self.drain_running = self.draining = True
        try:
            listeners = self.hub.warn_listeners(reason, period, time.time())
            await asyncio.sleep(period)
            self.hub.close_listeners(listeners, p.CloseCode.SERVICE_RESTART, reason)
        finally:
            self.drain_running = False
            self.draining = self.final  # after a final drain new listeners stay refused
        return len(listeners)

    def refusal(self, client_id: str | None = None) -> Refusal | None:
        """Why a new listener is turned away now, the drain first (None: it may come in). `client_id`:
        a WebSocket listener's, which replaces its own older socket here even at capacity."""
        if self.draining:
            return Refusal.DRAINING
        room = self.hub.has_room() if client_id is None else self.hub.has_room_for(client_id)
        return None if room else Refusal.FULL

    def request_drain(self, reason: str, period: float, final: bool = False) -> None:
        """Drain in the background (an operator's request is answered at once)."""
        task = asyncio.create_task(self.drain(reason, period, final))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def watch_replica_shutdown(self, health_url: str, interval: float = 1.0) -> None:
        """Drain as soon as Serve starts stopping this replica (a deploy, a downscale).

        Serve runs a replica's `__del__` only after its requests end, and a WebSocket never ends,
        so listeners would be cut without a word. With direct ingress the replica's own
        `/-/healthz` turns 503 ("DRAINING") the moment Serve starts stopping it: that is the cue.
        """
        import aiohttp  # Ray's own dependency

        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self.final:
                await asyncio.sleep(interval)
                try:
                    async with http.get(health_url) as answer:
                        status, text = answer.status, await answer.text()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    continue
                if status == 503 and "DRAINING" in text:
                    log.info("replica is shutting down: draining %d listeners", self.hub.listener_count)
                    await self.drain("replica shutting down", self.drain_timeout_sec, final=True)
                    return

    async def stop(self) -> None:
        """Stop the start-up and the watch, and close the shared port (the replica is going away)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.close_doors()

    def status(self) -> LifecycleStatus:
        return LifecycleStatus(
            replica_port=None if self.server_address is None else self.server_address[1],
            shared_port_open=self.shared_door is not None and self.shared_door.is_open,
            draining=self.draining,
        )
