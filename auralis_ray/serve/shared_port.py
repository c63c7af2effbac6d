"""The listeners' front door without a relay: every replica of a node accepts on one shared port.

With Serve's direct ingress each replica already serves HTTP and WebSockets itself, on a port of
its own. Here each replica also listens on `server.shared_port` with SO_REUSEPORT, and the kernel
spreads new connections over the replicas listening there. Nothing reads and rewrites the frames
between replica and listener (HAProxy does, which cost as much CPU as the replicas' own fan-out;
BENCHMARKS.md). Requests take the same path as on the replica's own port: Serve's direct-ingress
ASGI entry (its request accounting, health routes and backpressure), then our app.

A replica opens the door only when its stations are ready (so the kernel never hands a listener to a
replica that would answer silence) and closes it the moment it starts draining; the sockets it
already holds stay open until their drain ends. Duplicate `client_id`s on different replicas are
resolved by the registry actor (stream/registry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, Callable

import uvicorn

log = logging.getLogger(__name__)


def reuseport_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def bind_shared(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT (so every replica of the node can bind the same port)."""
    if not reuseport_supported():
        raise OSError("SO_REUSEPORT is not available on this platform")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def serve_direct_ingress_server() -> uvicorn.Server | None:
    """The uvicorn server Serve's direct ingress runs on this replica's event loop, if any."""
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if isinstance(owner, uvicorn.Server) and owner.started:
            return owner
    return None


class SharedPort:
    """One replica's listening socket on the shared port, served like Serve's own direct ingress."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task | None = None
        self.closed = False

    @property
    def is_open(self) -> bool:
        return self.server is not None and not self.closed

    async def open(self, config: uvicorn.Config) -> None:
        """Listen on the shared port with `config`'s app and settings (Serve's, where there is one)."""
        sock = bind_shared(self.host, self.port)
        server = uvicorn.Server(config)
        # not the process's signal handlers: the replica's (Ray's) own stay in place
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self.task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started and not self.task.done():
            await asyncio.sleep(0.01)
        if self.task.done():
            self.task.result()  # raises what stopped it
            raise RuntimeError(f"the shared port {self.host}:{self.port} server stopped at start")
        self.server = server
        if self.closed:  # closed while it started (a drain began): it never accepts
            self.close()
            return
        log.info("accepting listeners on the shared port %s:%d", self.host, self.port)

    def close(self) -> None:
        """Stop accepting (new connections go to the other replicas); open sockets stay as they are."""
        self.closed = True
        if self.server is not None:
            for listening in getattr(self.server, "servers", []):
                listening.close()  # closing a closed asyncio server does nothing
            log.info("closed the shared port %s:%d to new listeners", self.host, self.port)

    async def another_accepts(self, timeout: float = 0.5) -> bool:
        """Whether a connection to the shared port is accepted. Once this door is closed only another
        replica's door (open only while that replica is ready) accepts it."""
        try:
            async with asyncio.timeout(timeout):
                _reader, writer = await asyncio.open_connection(local_address(self.host), self.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True


async def wait_for_serve_server(timeout: float, poll_sec: float = 0.2) -> uvicorn.Server | None:
    """Serve's direct-ingress server on this replica, waiting up to `timeout` seconds for it to start
    (None: there is none, as behind Serve's own proxy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    server = serve_direct_ingress_server()
    while server is None and loop.time() < deadline:
        await asyncio.sleep(poll_sec)
        server = serve_direct_ingress_server()
    return server


def local_address(host: str) -> str:
    """Where this process reaches a socket bound to `host`: a wildcard host (IPv4, or IPv6 with IPv4
    on it, Linux's default) at 127.0.0.1."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def serve_address(server: uvicorn.Server) -> tuple[str, int] | None:
    """Where `server` listens, as an address this process can reach (a wildcard host is localhost)."""
    for listening in server.servers:
        for sock in listening.sockets or ():
            host, port = sock.getsockname()[:2]
            return local_address(host), port
    return None


def door_config(serve_server: uvicorn.Server | None, app: Any) -> uvicorn.Config:
    """How the shared port serves: as Serve's direct-ingress server does, or plainly with `app`."""
    if serve_server is not None:
        return serve_server.config
    log.info("no Serve direct-ingress server in this replica: the shared port serves the app itself")
    return uvicorn.Config(app, lifespan="off", access_log=False, log_level=None, log_config=None)


async def open_when_ready(door: SharedPort, config: uvicorn.Config, is_ready: Callable[[], bool],
                          ready_timeout: float = 60.0, retry_sec: float = 2.0, poll_sec: float = 0.2) -> None:
    """Wait for readiness (at most `ready_timeout`), then open `door` (retrying a busy port) unless it
    was closed meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ready_timeout
    while not is_ready() and loop.time() < deadline:
        await asyncio.sleep(poll_sec)
    while not door.closed:
        try:
            await door.open(config)
            return
        except OSError as error:
            log.error("cannot listen on the shared port %s:%d (%s); retrying in %.0f s",
                      door.host, door.port, error, retry_sec)
            await asyncio.sleep(retry_sec)
