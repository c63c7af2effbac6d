"""One ingress replica's start and end: its shared-port door, the watch for its shutdown, the drain.

- `start` finds the server Serve's direct ingress runs on this replica (its own port), watches that
  server's `/-/healthz` for Serve stopping the replica, and opens the shared port once the replica's
  stations are ready. Serve's first health check of the replica waits for that (`started`), so Serve
  counts a new replica as running, and stops the next old one of a rolling update, only once it
  accepts listeners.
- `drain` is a graceful shutdown: `shutdown_warning` to every listener, streaming on for the drain
  period, then close 1012. New listeners are refused meanwhile (the audio endpoint asks `draining`).
  A final drain (the replica is going away) first closes the shared port, so new listeners reach the
  other replicas, and keeps refusing afterwards; an operator's drain accepts listeners again after.
- When Serve replaces the replica, its drain hands over: past the drain period the listeners keep
  playing until another replica accepts on the shared port (at most `handover_wait_sec`), so their
  reconnects find a replica rather than a closed port. Serve starts the successor of a deployment's
  last replica only as it stops that replica.
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

# how often the shutdown watch asks Serve's /-/healthz whether Serve is stopping the replica
SHUTDOWN_WATCH_SEC = 1.0
# how often a handing-over drain asks whether another replica accepts on the shared port
SUCCESSOR_POLL_SEC = 0.2


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

    def __init__(self, hub: ListenerHub, app: Any, *, drain_timeout_sec: float, handover_wait_sec: float = 0.0,
                 shared_door: SharedPort | None = None, watch_shutdown: bool = False,
                 find_server_timeout_sec: float = 30.0):
        self.hub = hub
        self.app = app  # what the shared port serves where Serve's own server is not found
        self.drain_timeout_sec = drain_timeout_sec
        self.handover_wait_sec = handover_wait_sec
        self.shared_door = shared_door
        self.watch_shutdown = watch_shutdown  # Serve's direct ingress: its /-/healthz says when it stops us
        self.find_server_timeout_sec = find_server_timeout_sec
        self.server_address: tuple[str, int] | None = None  # this replica's own port, once found
        self.draining = False  # new listeners are refused
        self.drain_running = False  # a drain is under way (a second one while it runs does nothing)
        self.final = False  # a final drain began: the replica is going away
        self._tasks: list[asyncio.Task] = []  # start-up and the shutdown watch, cancelled at stop
        self._start_up_task: asyncio.Task | None = None
        self.start_awaited = False  # a health check waited for the start-up once
        self._drains: set[asyncio.Task] = set()  # drains run to their end

    # ---- start ----------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the start-up in the background: find this replica's own server, watch it for the
        replica's shutdown, open the shared port once the stations are ready."""
        if self._start_up_task is None and (self.watch_shutdown or self.shared_door is not None):
            self._start_up_task = asyncio.create_task(self._start_up())
            self._tasks.append(self._start_up_task)

    async def started(self, timeout: float) -> None:
        """The first call waits until the start-up has ended (the shared port is open), at most
        `timeout` seconds; every call raises what made the start-up fail."""
        task = self._start_up_task
        if task is None:
            return
        if not task.done() and not self.start_awaited:
            self.start_awaited = True
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(task)
            except TimeoutError:
                log.warning("the replica's start-up is still under way after %.0f s", timeout)
        if task.done() and not task.cancelled():
            task.result()

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

    async def drain(self, reason: str, period: float, final: bool = False, handover_sec: float = 0.0) -> int:
        """`shutdown_warning` to every listener, keep streaming for `period` (and up to `handover_sec`
        more until another replica accepts on the shared port), then close them (1012); return how
        many were drained (0: a drain was already under way)."""
        if final:
            self.final = True
            self.close_doors()
        if self.drain_running:
            return 0
        self.drain_running = self.draining = True
        try:
            listeners = self.hub.warn_listeners(reason, period, time.time())
            await asyncio.sleep(period)
            if handover_sec > 0 and not await self.wait_for_successor(handover_sec):
                log.warning("no other replica accepts on the shared port %.1f s after the drain period; "
                            "closing %d listeners", handover_sec, len(listeners))
            self.hub.close_listeners(listeners, p.CloseCode.SERVICE_RESTART, reason)
        finally:
            self.drain_running = False
            self.draining = self.final  # after a final drain new listeners stay refused
        return len(listeners)

    async def wait_for_successor(self, limit: float) -> bool:
        """Wait until another replica accepts on the shared port, at most `limit` seconds; whether one
        does (True where there is no shared port to hand over)."""
        if self.shared_door is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not await self.shared_door.another_accepts():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(SUCCESSOR_POLL_SEC, remaining))
        return True

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

    async def watch_replica_shutdown(self, health_url: str, interval: float = SHUTDOWN_WATCH_SEC) -> None:
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
                    await self.drain("replica shutting down", self.drain_timeout_sec, final=True,
                                     handover_sec=self.handover_wait_sec)
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
