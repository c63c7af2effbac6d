"""The Serve ingress: a Starlette ASGI app behind `@serve.ingress`; each replica is a `Replica` (replica.py).

`serve run configs/serve.yaml` imports `auralis_ray.serve.app:build_app`.
"""

from __future__ import annotations

import gc
import hmac
import json
import logging
import secrets
import time
from pathlib import Path

from pydantic import ValidationError
from ray import serve
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..config import PerformanceConfig, config_from_json, load_config
from ..music.params import StationParams
from ..versions import check_versions
from . import state
from .http_stream import LISTEN_PREFIX, HttpStreamEndpoint, route_path
from .replica import Replica, start_replica
from .websocket import AudioEndpoint

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def current_replica() -> Replica:
    replica = state.replica
    if replica is None:
        raise RuntimeError("the ingress replica is not initialized")
    return replica


def _json_error(status: int, message: str, detail: list | None = None,
                headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


async def _route_error(request: Request, error: HTTPException) -> Response:
    """A path no route has (404) or a method the route does not take (405), as JSON like every error."""
    return _json_error(error.status_code, f"{error.detail.lower()}: {request.method} {request.url.path}",
                       headers=error.headers)


# what the player may read from any origin, and never from a cache
NOW_PLAYING_HEADERS = {"cache-control": "no-store", "access-control-allow-origin": "*"}


def _authorized(request: Request) -> bool:
    token = current_replica().config.server.control_token
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    # header values come as latin-1 text: compared as bytes, any of them is a wrong token, not an error
    return scheme.lower() == "bearer" and bool(given) and hmac.compare_digest(given.strip().encode("latin-1"),
                                                                             token.encode())


async def index(request: Request) -> Response:
    page = WEB_DIR / "index.html"
    if not page.exists():
        return _json_error(404, "the web player is not installed")
    return FileResponse(page, headers={"cache-control": "no-cache"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    readiness = current_replica().hub.readiness(time.time())
    return JSONResponse({"ready": readiness.ready, "stations": readiness.stations},
                        status_code=200 if readiness.ready else 503)


async def api_status(request: Request) -> Response:
    replica = current_replica()
    hub = replica.hub
    now = time.time()
    infos = await hub.station_infos()
    stations = []
    for station in hub.station_statuses(now):
        info = infos[station.name]
        stations.append({
            "name": station.name,
            "listeners": station.listeners,
            "live_chunk_id": station.feed.live_chunk_id,
            "latest_published": station.feed.latest_published,
            "ready": station.feed.ready,
            "lookahead_chunks": info.get("lookahead_chunks"),
            "params": info.get("params"),
        })
    listeners, lifecycle = hub.listener_stats(), replica.lifecycle.status()
    return JSONResponse({
        "status": "ok",
        "version": __version__,
        "server_time": now,
        "uptime_sec": round(now - replica.started_at, 3),
        "listeners": listeners.listeners,
        "max_concurrent_clients": listeners.max_listeners,
        "stations": stations,
        "device": await replica.synthesis_device(),
        "replica": replica.replica_id,
        "replica_port": lifecycle.replica_port,
        "shared_port_open": lifecycle.shared_port_open,
        "revision": replica.config.server.revision,
    })


async def api_stations(request: Request) -> Response:
    infos = await current_replica().hub.station_infos()
    return JSONResponse({"stations": [{"name": n, "params": i.get("params"), "seed": i.get("seed")}
                                      for n, i in infos.items()]})


async def api_now_playing(request: Request) -> Response:
    """What the station plays at the newest chunk this replica published."""
    name = request.path_params["name"]
    feed = current_replica().hub.feed(name)
    if feed is None:
        return _json_error(404, f"unknown station {name!r}", headers=NOW_PLAYING_HEADERS)
    playing = feed.now_playing
    if playing is None:
        return _json_error(503, "the station has not said what it plays yet",
                           headers={**NOW_PLAYING_HEADERS, "retry-after": "1"})
    return JSONResponse(playing, headers=NOW_PLAYING_HEADERS)


async def api_control(request: Request) -> Response:
    hub = current_replica().hub
    if not _authorized(request):
        return _json_error(401, "missing or wrong bearer token")
    name = request.path_params["name"]
    feed = hub.feed(name)
    if feed is None:
        return _json_error(404, f"unknown station {name!r}")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _json_error(422, "body must be a JSON object", [{"field": "(body)", "message": "not valid JSON"}])
    if not isinstance(body, dict) or not body:
        return _json_error(422, "body must be a non-empty JSON object",
                           [{"field": "(body)", "message": "expected an object of parameters"}])
    info = await feed.station_info(fresh=True)  # the parameters as they are now
    current = StationParams.model_validate(info["params"])
    try:
        updated = current.updated(**body)
    except ValidationError as error:
        detail = [{"field": ".".join(str(x) for x in e["loc"]) or "(body)", "message": e["msg"]}
                  for e in error.errors()]
        return _json_error(422, "invalid station parameters", detail)
    except (TypeError, ValueError) as error:
        return _json_error(422, "invalid station parameters", [{"field": "(body)", "message": str(error)}])
    params = await feed.set_station_params(updated.model_dump_json())
    return JSONResponse({"station": name, "params": params})


async def api_metrics(request: Request) -> Response:
    replica = current_replica()
    hub = replica.hub
    now = time.time()
    feeds = {}
    for station in hub.station_statuses(now):
        feeds[station.name] = {
            "listeners": station.listeners,
            "published_chunks": station.feed.published_chunks,
            "ahead_chunks": station.feed.ahead_chunks,
            "fetch_failures": station.feed.fetch_failures,
            **hub.feed(station.name).tick_summary(),
            "seconds_since_station_answered": station.feed.seconds_since_station_answered,
        }
    listeners = hub.listener_stats()
    return JSONResponse({
        "timestamp": now,
        "listeners": listeners.listeners,
        # sockets closed (4000) because the same client_id connected again on another replica
        "replaced_from_other_replicas": listeners.replaced_from_other_replicas,
        "feeds": feeds,
        "metrics": hub.metrics.snapshot(),
        "gc": replica.gc_status(),
        "listener_details": hub.listener_details(),
    })


async def api_drop(request: Request) -> Response:
    if not _authorized(request):
        return _json_error(401, "missing or wrong bearer token")
    dropped = current_replica().hub.drop(request.path_params["client_id"])
    return JSONResponse({"dropped": dropped}, status_code=200 if dropped else 404)


async def api_drain(request: Request) -> Response:
    replica = current_replica()
    if not _authorized(request):
        return _json_error(401, "missing or wrong bearer token")
    longest = replica.config.concurrency.drain_timeout_sec
    try:
        body = json.loads(await request.body() or b"{}")
        period = float(body.get("period", longest))
        final = body.get("final", False)
        if not isinstance(body, dict) or not 0 <= period <= longest or not isinstance(final, bool):
            raise ValueError
    except (ValueError, TypeError, AttributeError):
        return _json_error(400, f"the body is optional JSON: {{\"period\": 0 to {longest} seconds, "
                                "\"final\": true to stop accepting listeners for good}")
    listeners = replica.hub.listener_count
    replica.lifecycle.request_drain("server stopping" if final else "planned shutdown", period, final=final)
    return JSONResponse({"draining": True, "drain_period_sec": period, "final": final, "listeners": listeners})


http_app = Starlette(routes=[
    Route("/", index),
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/api/status", api_status),
    Route("/api/stations", api_stations),
    Route("/api/stations/{name}/now", api_now_playing),
    Route("/api/stations/{name}/control", api_control, methods=["POST"]),
    Route("/api/metrics", api_metrics),
    Route("/api/debug/drop/{client_id}", api_drop, methods=["POST"]),
    Route("/api/admin/drain", api_drain, methods=["POST"]),
    Mount("/static", StaticFiles(directory=str(WEB_DIR), check_dir=False), name="static"),
], exception_handlers={HTTPException: _route_error})


class AuralisApp:
    """The ingress ASGI app: audio sockets and HTTP streams go straight to their endpoints, the rest
    to Starlette.

    Every audio frame passes through each ASGI layer's `send`; keeping Starlette's middleware out
    of that path measurably lowers the CPU cost per listener (BENCHMARKS.md), and leaves the socket
    reachable for direct writes (serve/direct.py).
    """

    AUDIO_PREFIX = "/ws/audio/"

    def __init__(self, http, audio, listen):
        self.http = http
        self.audio = audio
        self.listen = listen

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind in ("websocket", "http"):
            path = route_path(scope)
            if kind == "websocket" and path.startswith(self.AUDIO_PREFIX):
                scope["path_params"] = {"client_id": path[len(self.AUDIO_PREFIX):]}
                await self.audio(scope, receive, send)
                return
            if kind == "http" and path.startswith(LISTEN_PREFIX):
                await self.listen(scope, receive, send)
                return
        await self.http(scope, receive, send)


app = AuralisApp(http_app, AudioEndpoint(current_replica, __version__), HttpStreamEndpoint(current_replica))


# The ingress runs our ASGI code on the replica's own event loop, not on a second loop in another
# thread: every audio frame would otherwise cross threads (and the GIL) once more (BENCHMARKS.md).
INGRESS_ACTOR_OPTIONS = {
    "num_cpus": 0.25,  # as configs/serve.yaml: four replicas fit beside synthesis on two cores
    "runtime_env": {"env_vars": {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}},
}


# the longest Serve's first health check of a replica waits for the replica's shared port to open
STARTUP_WAIT_SEC = 60.0


@serve.deployment(name="AuralisIngress", max_ongoing_requests=5000, graceful_shutdown_timeout_s=15,
                  ray_actor_options=INGRESS_ACTOR_OPTIONS)
@serve.ingress(app)
class AuralisIngress:
    """The Serve deployment: one ingress replica (serve/replica.py) behind the ASGI app."""

    async def __init__(self, config_json: str):
        state.replica = await start_replica(config_from_json(config_json), app)
        # Ray, Serve and the replica's parts live as long as the replica: keep them out of every later
        # collection, so a full collection scans only what listeners brought (see ScheduledFullCollection)
        gc.freeze()

    async def check_health(self) -> None:
        # the first check, part of Serve's start of the replica, waits until the shared port is open
        await current_replica().lifecycle.started(STARTUP_WAIT_SEC)

    async def __del__(self) -> None:
        if state.replica is not None:
            await state.replica.stop()


def make_config(args: dict | None = None) -> PerformanceConfig:
    """Configuration from the environment, with `serve run` args as overrides; fills the token."""
    config = load_config(**(args or {}))
    if not config.server.control_token:
        token = secrets.token_urlsafe(24)
        config.server.control_token = token
        print(f"Auralis station control token (generated; set AURALIS__SERVER__CONTROL_TOKEN to fix it): {token}",
              flush=True)
    return config


def build_app(args: dict | None = None):
    """Application builder for `serve run` / `serve deploy`."""
    check_versions()
    config = make_config(args)
    return AuralisIngress.options(
        num_replicas=config.server.ingress_replicas,
        max_ongoing_requests=config.server.max_ongoing_requests,
    ).bind(config.model_dump_json())
