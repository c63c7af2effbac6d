"""Per-replica fan-out: one actor call per station per fetch interval, every listener fed from one ring.

Each StationFeed prefetches encoded chunks from its station actor (one call every
`buffer.replica_fetch_interval_sec`, for all of this replica's listeners) and publishes chunk k at
exactly epoch + k * 100 ms from its own replica-local BroadcastRingBuffer; what to fetch, publish and
report is decided by its FeedCore (stream/feed.py). Listeners never call an actor and nothing is
encoded per listener: the tick hands the same bytes to the WebSocket listeners (serve/websocket.py)
and to the HTTP stream listeners (serve/http_stream.py). Each fetch also says what the station plays
(`now_playing`); a new section is announced to every listener when its first chunk is published.
The ListenerHub knows every listener of the replica; the replica's start and end (the shared port,
drains) are serve/lifecycle.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Iterable

from ..config import PerformanceConfig
from ..core_settings import feed_settings
from ..monitor.gc_config import ScheduledFullCollection
from ..monitor.memory import MemoryMonitor
from ..monitor.metrics import PerformanceMetrics
from ..monitor.process import ProcessSampler
from ..monitor.stats import nearest_rank
from ..stream import protocol as p
from ..stream.adaptive import TIER_ORDER, TIERS
from ..stream.broadcast import BroadcastRingBuffer
from ..stream.client import ClientSession
from ..stream.feed import FeedCore, FeedStatus, TickRecord
from ..stream.http_fanout import LiveSpans, WriteWheel
from ..stream.now_playing import NowPlayingTimeline, Section
from ..stream.pool import EncodedChunk
from ..stream.settings import FeedSettings
from .claims import ClaimSync
from .direct import DirectWriter
from .listener import HttpListener, Listener

log = logging.getLogger(__name__)

_QUANTILES = (("p50", 0.50), ("p99", 0.99), ("max", 1.0))
# with no listener, a feed publishes the chunks due this often, together (at most 3 chunks late:
# readiness allows READY_MAX_BEHIND_CHUNKS)
IDLE_PUBLISH_SEC = 0.3
# the longest opening burst a listener takes (the largest tier's target depth)
LONGEST_BURST_CHUNKS = max(tier.target_ms for tier in TIERS.values()) // p.CHUNK_DURATION_MS
# a compressed listener's first fetch reaches this far past the live edge; the fetch loop brings the
# compressed forms of the chunks further ahead right after (their publish time is further off)
COMPRESSED_JOIN_AHEAD_CHUNKS = 5


@dataclass(frozen=True)
class StationStatus:
    """One station on this replica: its listeners here and its feed's status."""

    name: str
    listeners: int
    feed: FeedStatus


@dataclass(frozen=True)
class Readiness:
    """Whether the replica is ready: every station publishes at the live edge and holds enough ahead."""

    stations: dict[str, bool]

    @property
    def ready(self) -> bool:
        return all(self.stations.values())


def tick_summary(ticks: Iterable[TickRecord], slowest: int = 5) -> dict:
    """Publish lateness and fan-out time over `ticks` (p50, p99, max), and the slowest ticks."""
    ticks = list(ticks)
    late = sorted(t.publish_lateness_ms for t in ticks)
    fanout = sorted(t.fanout_ms for t in ticks)
    worst = sorted(ticks, key=lambda t: t.publish_lateness_ms + t.fanout_ms, reverse=True)[:slowest]
    return {
        **{f"publish_lateness_ms_{label}": nearest_rank(late, q) if late else None for label, q in _QUANTILES},
        **{f"fanout_ms_{label}": nearest_rank(fanout, q) if fanout else None for label, q in _QUANTILES},
        "slowest_ticks": [{"chunk_id": t.chunk_id, "published_at": round(t.published_at, 4),
                           "publish_lateness_ms": round(t.publish_lateness_ms, 2), "fanout_ms": round(t.fanout_ms, 2),
                           "listeners": t.listeners} for t in worst],
    }


class StationFeed:
    """One station on one replica: the fetch and publish loops around its FeedCore, and the fan-out of
    each published chunk to the station's listeners on this replica."""

    def __init__(self, name: str, station, settings: FeedSettings, fetch_timeout_sec: float,
                 metrics: PerformanceMetrics, full_gc: ScheduledFullCollection | None = None):
        self.name = name
        self.station = station  # the handle of the station actor that holds it
        self.core = FeedCore(settings)
        self.fetch_timeout_sec = fetch_timeout_sec
        self.metrics = metrics
        self.full_gc = full_gc
        self.listeners: dict[str, Listener] = {}
        self.http_listeners: dict[str, HttpListener] = {}
        self.http_due: WriteWheel[HttpListener] = WriteWheel()  # each HTTP listener by its next write's chunk
        self.http_spans = LiveSpans(self.core.ring)
        self.playing = NowPlayingTimeline()
        self.now_playing_message: str | None = None  # the current section's `now_playing`, encoded once
        self._has_audio = asyncio.Event()
        self._new_pending = asyncio.Event()
        self._listener_joined = asyncio.Event()
        # the first publish on schedule is timed even with nobody listening, so the jitter series is
        # in the metrics export from the start; later ones only while somebody listens
        self._timed_once = False
        self._compressed_fetch = asyncio.Lock()
        self._fetch_now = asyncio.Event()  # set: the fetch loop fetches at once
        self._info: asyncio.Future | None = None  # the last `info` call
        self._tasks: list[asyncio.Task] = []

    @property
    def ring(self) -> BroadcastRingBuffer:
        """The ring this replica's listeners of the station read from."""
        return self.core.ring

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._fetch_loop()), asyncio.create_task(self._publish_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def wait_for_audio(self, timeout: float, compressed: bool = False, resume_from: int | None = None,
                             burst_chunks: int = LONGEST_BURST_CHUNKS) -> bool:
        """Wait up to `timeout` seconds until the feed holds a chunk a new listener can start from;
        False if it still holds none. `compressed`: the listener takes compressed forms, so the chunks
        of its opening burst (`burst_chunks`, or from `resume_from` on) are fetched with them where
        they have none (the station makes them only while somebody listens to them)."""
        if not self.core.has_audio:
            try:
                async with asyncio.timeout(timeout):
                    await self._has_audio.wait()
            except TimeoutError:
                return False
        if compressed:
            live = self.core.live_id(time.time())
            first = live - burst_chunks + 1 if resume_from is None else min(resume_from + 1, live)
            # a resume point further back gets no compressed forms made: its chunks are skipped
            first = max(first, live - LONGEST_BURST_CHUNKS + 1)
            await self._fetch_compressed(first)
        self.publish(time.time())  # an idle feed publishes in batches: bring the ring to the live edge
        return True

    async def _fetch_compressed(self, first_id: int) -> None:
        """Fetch the held chunks from `first_id` to just past the live edge again, with compressed
        forms, if one lacks them (one fetch at a time: listeners joining together wait for the same
        one); the fetch loop then brings the forms of the chunks waiting further ahead, at once."""
        async with self._compressed_fetch:
            if not self.core.lacks_compressed(first_id):
                return
            try:
                async with asyncio.timeout(self.fetch_timeout_sec):
                    reply = await self.station.fetch.remote(self.name, first_id - 1, COMPRESSED_JOIN_AHEAD_CHUNKS, True)
            except Exception as error:  # the listener starts without them: its first chunks are skipped
                log.warning("fetching compressed forms from station %s failed: %r", self.name, error)
                return
            self._merge(reply)
            self._fetch_now.set()

    # ---- the station actor ----------------------------------------------------------------

    async def station_info(self, fresh: bool = False) -> dict:
        """The station actor's `info`. Requests that come while a call is out share its answer, so a
        flood of status requests keeps at most one call at a time at the station actor, which feeds
        every replica. `fresh`: a call of its own, sent now."""
        if fresh or self._info is None or self._info.done():
            self._info = asyncio.ensure_future(self.station.info.remote(self.name))
        return await asyncio.shield(self._info)

    async def set_station_params(self, params_json: str) -> dict:
        return await self.station.set_params.remote(self.name, params_json)

    async def _fetch_loop(self) -> None:
        """One actor call per fetch interval: everything new up to the prefetch horizon."""
        core = self.core
        while True:
            self._fetch_now.clear()  # a wake from here on asks for the fetch after this one
            try:
                compressed = self.wants_compressed
                fetch = self.station.fetch.remote(self.name, core.fetch_after(compressed),
                                                  core.settings.replica_prefetch_chunks, compressed)
                async with asyncio.timeout(self.fetch_timeout_sec):
                    reply = await fetch
                self._merge(reply)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the station actor is restarting: keep serving what we hold
                failures = core.fetch_failed()
                self.metrics.inc_websocket_errors("station_fetch")
                if failures in (1, 10) or failures % 100 == 0:
                    # before its first audio the station actor is still starting (imports, codecs)
                    level = logging.WARNING if core.has_audio else logging.INFO
                    log.log(level, "fetch from station %s failed (%d): %r", self.name, failures, error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(core.fetch_delay(time.time(), self.wants_compressed)):
                    await self._fetch_now.wait()

    def _merge(self, reply: dict) -> None:
        """Take a fetch's answer (`StationActor.fetch`)."""
        core = self.core
        chunks = [EncodedChunk.from_transfer(w) for w in reply["chunks"]]
        if core.merge_fetch(reply["epoch"], chunks, time.time()):
            self._new_pending.set()
        self.playing.merge(reply.get("now_playing") or ())
        if core.has_audio:
            self._has_audio.set()
            self._now_playing_at(core.ring.latest_id)

    @property
    def wants_compressed(self) -> bool:
        """Whether a listener of the station on this replica takes compressed forms."""
        return bool(self.http_listeners) or any(listener.session.compressed for listener in self.listeners.values())

    async def _publish_loop(self) -> None:
        while True:
            try:
                await self._publish_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad chunk or listener stop the station
                log.exception("publishing on station %s failed", self.name)
                await asyncio.sleep(p.CHUNK_SECONDS / 10)

    async def _publish_due(self) -> None:
        """Wait until the next waiting chunk is due, then publish and fan out what is due. With no
        listener on this replica (after its first timed publish) the feed wakes only every
        IDLE_PUBLISH_SEC (or when one joins) and publishes the chunks due by then together: its ring
        stays at the live edge for the next listener, and within readiness' bound."""
        core = self.core
        due = core.next_due()
        if due is None:
            self._new_pending.clear()
            await self._new_pending.wait()
            return
        delay = due - time.time()
        if delay > 0 and not self.listener_count and self._timed_once:
            self._listener_joined.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, IDLE_PUBLISH_SEC)):
                    await self._listener_joined.wait()
        elif delay > 0:
            await asyncio.sleep(delay)
        self.publish(time.time())

    def publish(self, now: float) -> None:
        """Publish every waiting chunk whose time has come and fan it out to the listeners."""
        core = self.core
        published = core.publish_due(now)
        if not published:
            return
        self._has_audio.set()
        self._now_playing_at(published[-1].chunk_id)
        listeners = self.listener_count
        if not listeners and self._timed_once:
            return  # nobody waited for these: no fan-out, no timing
        for chunk in published:
            self.metrics.observe_chunk_jitter(self.name, (now - chunk.timestamp) * 1000)
        self._timed_once = True
        if not listeners:
            return
        self.tick(now)
        core.record_tick(published[-1], now, (time.time() - now) * 1000, listeners)
        if self.full_gc is not None and self.full_gc.due(now):
            # behind the other stations' fan-out of this tick, if it is due too
            asyncio.get_running_loop().call_soon(self.full_gc.collect, time.time())

    # ---- now playing ----------------------------------------------------------------------

    @property
    def now_playing(self) -> Section | None:
        """The section sounding at the newest published chunk, as the station reported it."""
        return self.playing.current

    @property
    def stream_title(self) -> str:
        """The ICY StreamTitle: what plays, or the station's name before anything is known."""
        current = self.playing.current
        return self.name if current is None else current["stream_title"]

    def _now_playing_at(self, chunk_id: int) -> None:
        """`chunk_id` is published: where a new section starts, tell every listener (the WebSocket
        listeners' `now_playing` goes right before the section's first chunk in each one's stream; the
        HTTP listeners' ICY title changes with their next metadata block)."""
        changed = self.playing.advance(chunk_id)
        if changed is None:
            return
        self.now_playing_message = message = p.dumps(p.now_playing(changed))
        since = changed["since_chunk_id"]
        for listener in self.listeners.values():
            listener.session.announce(message, since)
        for http_listener in self.http_listeners.values():
            http_listener.session.set_title(changed["stream_title"])

    # ---- fan-out --------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Move the new chunk into every listener's outbox, then write it (direct writes) or wake the
        listener's sender."""
        for listener in list(self.listeners.values()):
            session = listener.session
            try:
                if session.is_stalled(now):
                    self.metrics.inc_websocket_errors("stalled")
                    listener.close(p.CloseCode.POLICY_VIOLATION, "listener stalled")
                    continue
                if session.status_due(now):
                    session.queue_status(now)
                if listener.send_live(now):
                    continue
                if session.pump(now):
                    if listener.writer is None or session.closing is not None:
                        listener.wake.set()
                    else:
                        listener.flush(now)
            except Exception:  # one broken listener is closed; the others go on
                log.exception("listener %s failed; closing it", session.client_id)
                self.metrics.inc_websocket_errors("internal")
                listener.close(p.CloseCode.POLICY_VIOLATION, "internal error")
        latest = self.ring.latest_id
        if latest is None:
            return
        for http_listener in self.http_due.pop_due(latest):
            try:
                if http_listener.send_due(now, self.http_spans):
                    self.metrics.inc_websocket_errors("stalled")
            except Exception:
                log.exception("HTTP listener %s failed; dropping it", http_listener.listener_id)
                self.metrics.inc_websocket_errors("internal")
                http_listener.drop()
            self._schedule_http(http_listener)

    def _schedule_http(self, listener: HttpListener) -> None:
        """File a listener of this feed under its next write (unless the stream has ended)."""
        if not listener.ended.is_set() and self.http_listeners.get(listener.listener_id) is listener:
            self.http_due.schedule(listener.listener_id, listener, listener.session.next_write_id())

    @property
    def listener_count(self) -> int:
        """WebSocket and HTTP stream listeners of the station on this replica."""
        return len(self.listeners) + len(self.http_listeners)

    def status(self, now: float) -> StationStatus:
        return StationStatus(self.name, self.listener_count, self.core.status(now))

    def tick_summary(self) -> dict:
        """The last minute's publish ticks, summarized (see `tick_summary`)."""
        return tick_summary(self.core.ticks)

    def is_ready(self, now: float) -> bool:
        return self.core.is_ready(now)

    def add(self, listener: Listener) -> None:
        self.listeners[listener.session.client_id] = listener
        self._listener_joined.set()

    def remove(self, listener: Listener) -> None:
        client_id = listener.session.client_id
        if self.listeners.get(client_id) is listener:
            del self.listeners[client_id]

    def add_http(self, listener: HttpListener) -> None:
        self.http_listeners[listener.listener_id] = listener
        self._listener_joined.set()

    def start_http(self, listener: HttpListener, now: float) -> None:
        """The listener's response has started: its opening burst, then a write every few ticks."""
        listener.start(now, self.http_spans)
        self._schedule_http(listener)

    def remove_http(self, listener: HttpListener) -> None:
        if self.http_listeners.get(listener.listener_id) is listener:
            del self.http_listeners[listener.listener_id]
            self.http_due.remove(listener.listener_id)


@dataclass(frozen=True)
class ListenerStats:
    """This replica's listeners: how many, how many it takes, and how many sockets it closed (4000)
    because the same client_id connected again on another replica (None without a registry)."""

    listeners: int
    max_listeners: int
    replaced_from_other_replicas: int | None


class ListenerHub:
    """All feeds and listeners of one ingress replica: which listener hears which station, the
    client_id claims shared with the other replicas, and the listeners' status and stats."""

    def __init__(self, config: PerformanceConfig, stations: dict, metrics: PerformanceMetrics, *,
                 full_gc: ScheduledFullCollection | None = None, registry=None, owner: str = ""):
        """`stations`: name -> station actor handle. `registry`: the cluster-wide client_id registry
        (a newer socket on another replica then replaces ours, 4000), reported to as `owner`."""
        self.config = config
        self.metrics = metrics
        settings = feed_settings(config)
        self.feeds = {name: StationFeed(name, handle, settings, config.concurrency.station_fetch_timeout_sec, metrics,
                                        full_gc) for name, handle in stations.items()}
        self.by_client: dict[str, tuple[StationFeed, Listener]] = {}
        self.http_listeners: dict[str, tuple[StationFeed, HttpListener]] = {}
        self._http_ids = itertools.count(1)
        self.claims = None if registry is None else ClaimSync(registry, owner, self.evict)
        self._generations = itertools.count(1)
        self._stats_task: asyncio.Task | None = None
        # the replica's memory and collections, as the synthesis and station actors record theirs
        self.process = ProcessSampler(metrics, config.monitoring.metrics_collection_interval_sec,
                                      monitor=MemoryMonitor.from_config(config.memory))

    def start(self) -> None:
        """Start every feed, the stats loop and the claims' sync."""
        for feed in self.feeds.values():
            feed.start()
        if self._stats_task is None:
            self._stats_task = asyncio.create_task(self._stats_loop())
        if self.claims is not None:
            self.claims.start()

    async def stop(self) -> None:
        """Stop fetching and publishing (the replica is going away)."""
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self.claims is not None:
            await self.claims.stop()
        await asyncio.gather(*(feed.stop() for feed in self.feeds.values()))

    # ---- stations -------------------------------------------------------------------------

    def feed(self, station: str) -> StationFeed | None:
        return self.feeds.get(station)

    async def station_infos(self) -> dict[str, dict]:
        """Each station actor's `info`, by name (an `error` entry for a station that did not answer)."""
        names = list(self.feeds)
        infos = await asyncio.gather(*(self.feeds[n].station_info() for n in names), return_exceptions=True)
        return {n: (i if isinstance(i, dict) else {"name": n, "error": repr(i)}) for n, i in zip(names, infos)}

    def readiness(self, now: float) -> Readiness:
        return Readiness({name: feed.is_ready(now) for name, feed in self.feeds.items()})

    def is_ready(self, now: float) -> bool:
        return self.readiness(now).ready

    def station_statuses(self, now: float) -> list[StationStatus]:
        return [feed.status(now) for feed in self.feeds.values()]

    # ---- listeners ------------------------------------------------------------------------

    @property
    def listener_count(self) -> int:
        """WebSocket and HTTP stream listeners: both count against `concurrency.max_concurrent_clients`."""
        return len(self.by_client) + len(self.http_listeners)

    def has_room(self) -> bool:
        """Below `concurrency.max_concurrent_clients`."""
        return self.listener_count < self.config.concurrency.max_concurrent_clients

    def has_room_for(self, client_id: str) -> bool:
        """Room for one more, or `client_id` replaces a socket it holds here."""
        return self.has_room() or client_id in self.by_client

    def listener_stats(self) -> ListenerStats:
        return ListenerStats(self.listener_count, self.config.concurrency.max_concurrent_clients,
                             None if self.claims is None else self.claims.evicted)

    def register(self, feed: StationFeed, session: ClientSession, writer: DirectWriter | None = None) -> Listener:
        """Add an opened session to `feed`; an older socket with its client_id is replaced (4000)."""
        previous = self.by_client.get(session.client_id)
        if previous is not None:
            self._replace(*previous)
        listener = Listener(session, next(self._generations), writer)
        feed.add(listener)
        self.by_client[session.client_id] = (feed, listener)
        if self.claims is not None:
            self.claims.claim(session.client_id, listener.generation, time.time())
        return listener

    def _replace(self, feed: StationFeed, old: Listener) -> None:
        old.close(p.CloseCode.REPLACED, "replaced by a newer connection with the same client_id")
        feed.remove(old)

    def evict(self, client_id: str, generation: int) -> bool:
        """A newer socket with this client_id opened on another replica: close ours, if still that one."""
        entry = self.by_client.get(client_id)
        if entry is None or entry[1].generation != generation:
            return False
        del self.by_client[client_id]
        self._replace(*entry)
        return True

    def new_http_listener_id(self) -> str:
        """A name for an HTTP stream listener's cursor: unlike every client_id (':' is not in one)."""
        return f"http:{next(self._http_ids)}"

    def register_http(self, feed: StationFeed, listener: HttpListener) -> None:
        feed.add_http(listener)
        self.http_listeners[listener.listener_id] = (feed, listener)

    def unregister_http(self, feed: StationFeed, listener: HttpListener) -> None:
        feed.remove_http(listener)
        self.http_listeners.pop(listener.listener_id, None)

    def unregister(self, feed: StationFeed, listener: Listener) -> None:
        cid = listener.session.client_id
        feed.remove(listener)
        if self.by_client.get(cid, (None, None))[1] is listener:
            del self.by_client[cid]
            if self.claims is not None:
                self.claims.release(cid, listener.generation)

    def drop(self, client_id: str, code: int = p.CloseCode.SERVICE_RESTART) -> bool:
        entry = self.by_client.get(client_id)
        if entry is None:
            return False
        entry[1].close(code, "closed by the server")
        return True

    def warn_listeners(self, reason: str, period: float, now: float) -> list[Listener | HttpListener]:
        """`shutdown_warning` to every WebSocket listener (the start of a drain); return every
        listener, the HTTP stream listeners too (an HTTP stream has no way to warn: it just ends)."""
        listeners = [listener for _, listener in self.by_client.values()]
        for listener in listeners:
            listener.session.begin_drain(reason, period, now)
            listener.wake.set()
        return listeners + [listener for _, listener in self.http_listeners.values()]

    def listeners_not_closing(self) -> int:
        """The listeners not yet told to close (those told are gone once their sockets close)."""
        every = [listener for _, listener in self.by_client.values()]
        every += [listener for _, listener in self.http_listeners.values()]
        return sum(listener.session.closing is None for listener in every)

    def close_listeners(self, listeners: Iterable[Listener | HttpListener], code: int, reason: str) -> None:
        for listener in listeners:
            listener.close(code, reason)

    async def _stats_loop(self) -> None:
        interval = self.config.monitoring.metrics_collection_interval_sec
        while True:
            await asyncio.sleep(interval)
            try:
                self.record_stats()
            except Exception:
                log.exception("recording listener stats failed")

    def record_stats(self) -> None:
        self.process.sample(time.time(), force=True)
        for feed in self.feeds.values():
            self.metrics.set_active_connections(feed.name, feed.listener_count)
            by_tier: dict[str, list[float]] = {}
            for listener in feed.listeners.values():
                health = listener.session.outbox.get_buffer_health()
                by_tier.setdefault(health["current_tier"], []).append(health["current_depth_chunks"])
            for tier in TIER_ORDER:
                depths = by_tier.get(tier, [])
                self.metrics.set_buffer_depth(feed.name, tier, sum(depths) / len(depths) if depths else 0.0)

    def listener_details(self, limit: int = 200) -> list[dict]:
        now = time.time()
        out = []
        for feed, listener in list(self.by_client.values())[:limit]:
            s = listener.session
            cursor = feed.ring.get_client_stats(s.cursor_id) if s.cursor_id in feed.ring.client_cursors else None
            out.append({"station": feed.name, "format": s.fmt, "state": s.state.connection_state.value,
                        "direct_writes": listener.writer is not None,
                        "send_backlog_bytes": None if listener.writer is None else listener.writer.backlog,
                        "stalled_for_sec": None if s.state.busy_since is None else round(now - s.state.busy_since, 3),
                        "cursor": cursor, **s.buffer_status(now)})
        for feed, http_listener in list(self.http_listeners.values())[:max(0, limit - len(out))]:
            h = http_listener.session
            out.append({"station": feed.name, "client_id": h.listener_id, "format": h.fmt.value, "http": True,
                        "icy": h.icy is not None, "direct_writes": http_listener.writer is not None,
                        "send_backlog_bytes": None if http_listener.writer is None else http_listener.writer.backlog,
                        "largest_backlog_bytes": h.largest_backlog, "chunks_sent": h.chunks_sent,
                        "bytes_sent": h.bytes_sent, "chunks_skipped": h.chunks_skipped,
                        "connection_uptime_sec": round(now - h.connected_at, 3)})
        return out
