"""SynthesisActor: renders every station it serves in one batched call, ahead of real time.

A render loop keeps each station `buffer.lookahead_chunks` ahead of its live edge and pushes the
PCM to the station actors, with the sections each block plays (what the station reports as now
playing). Rendering runs in the AsyncSynthesisEngine's thread pool while the
previous block is still being pushed, so synthesis and transfer overlap. The loop lives on its own
thread (with its own event loop), so it starts with the actor and again after every restart; after
a restart it asks each station where its timeline continues, which the stations' look-ahead covers.
Changes (a station attaching, new parameters) are queued and applied between two renders, so the
engine is only ever touched by the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import ray

from ..config import config_from_json
from ..core_settings import batch_render_config, render_block_frames
from ..monitor.gc_config import configure_gc
from ..monitor.metrics import get_metrics
from ..monitor.priority import lower_priority
from ..monitor.process import ProcessSampler
from ..music.params import StationParams
from ..stream.protocol import CHUNK_SECONDS, FRAMES_PER_CHUNK
from ..stream.schedule import live_chunk_id
from .names import actor_namespace, station_actor_name

log = logging.getLogger(__name__)

# the render loop sleeps at most this long between looks at the stations' lead (a queued change
# wakes it at once)
IDLE_WAKE_SEC = 0.2
ATTACH_TIMEOUT_SEC = 30  # how long synthesis waits for a station actor that is up to say where it stands


@dataclass
class StationTimeline:
    """A station the synthesis serves: its schedule, the next chunk to render and its actor."""

    name: str
    epoch: float
    next_chunk: int
    handle: Any


class RenderedBlock(NamedTuple):
    """One station's share of a render: its PCM from `first_chunk_id` on, and the sections it plays
    (`NowPlaying.as_dict()`: the one sounding at its first chunk, then those that begin in it)."""

    first_chunk_id: int
    pcm: bytes
    now_playing: list[dict]


class SynthesisCore:
    """Decides what to render and renders it; Ray-free so it can be tested directly."""

    def __init__(self, config_json: str):
        import torch

        from ..synth.async_engine import AsyncSynthesisEngine
        from ..synth.engine import OptimizedSynthesisEngine

        self.config = config_from_json(config_json)
        torch.set_num_threads(self.config.gpu.torch_threads)
        self.block_chunks = self.config.gpu.render_block_chunks
        self.engine = OptimizedSynthesisEngine(batch_render_config(self.config.gpu),
                                               block_frames=render_block_frames(self.config.gpu))
        self.async_engine = AsyncSynthesisEngine(self.engine, max_workers=self.config.concurrency.thread_pool_workers)
        self.timelines: dict[str, StationTimeline] = {}
        self.metrics = get_metrics("synthesis", self.config.monitoring)
        self.commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.blocks_rendered = 0

    # ---- changes, queued from any thread, applied by the render loop ---------------------

    def attach(self, name: str, epoch: float, next_chunk: int, params: StationParams, seed: int, handle) -> None:
        def apply() -> None:
            if name in self.engine.stations():
                self.engine.remove_station(name)
            self.engine.add_station(name, params, seed, start_frame=next_chunk * FRAMES_PER_CHUNK)
            self.timelines[name] = StationTimeline(name, epoch, next_chunk, handle)
        self.commands.put(apply)

    def set_params(self, name: str, params: StationParams) -> None:
        self.commands.put(lambda: self.engine.set_params(name, params))

    def apply_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            command()

    # ---- rendering ------------------------------------------------------------------------

    def lead_chunks(self, now: float) -> dict[str, int]:
        """How far each station's rendered audio runs ahead of its live edge."""
        return {t.name: t.next_chunk - 1 - live_chunk_id(t.epoch, now) for t in self.timelines.values()}

    def needs_render(self, now: float) -> bool:
        lead = self.lead_chunks(now)
        return bool(lead) and min(lead.values()) < self.config.buffer.lookahead_chunks

    def seconds_until_render(self, now: float, at_most: float) -> float:
        """How long the render loop may sleep before a station's lead falls below the look-ahead
        (`at_most` at most, so queued changes wait no longer than that)."""
        lead = self.lead_chunks(now)
        if not lead:
            return at_most
        spare = min(lead.values()) - self.config.buffer.lookahead_chunks + 1
        return min(at_most, max(0.0, spare * CHUNK_SECONDS))

    async def render(self) -> dict[str, RenderedBlock]:
        """One batched render of every station, off the loop."""
        start = time.perf_counter()
        blocks = await self.async_engine.render_block_async()
        elapsed = time.perf_counter() - start
        out = {}
        for name, block in blocks.items():
            timeline = self.timelines[name]
            first = timeline.next_chunk
            end = first + self.block_chunks
            sections = self.engine.now_playing(name, first * FRAMES_PER_CHUNK, end * FRAMES_PER_CHUNK)
            out[name] = RenderedBlock(first, block.tobytes(), [section.as_dict() for section in sections])
            timeline.next_chunk += self.block_chunks
        self.blocks_rendered += 1
        self.metrics.observe_synthesis_latency(elapsed, len(blocks))
        return out


def _consume_result(push: asyncio.Future) -> None:
    if not push.cancelled() and push.exception() is not None:
        log.warning("a push to a station failed: %r", push.exception())


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=1)
class SynthesisActor:
    """The synthesis as a Ray actor: a render loop on its own thread, ahead of every station's live edge."""

    def __init__(self, config_json: str, station_names: list[str]):
        self.core = SynthesisCore(config_json)
        lower_priority(self.core.config.concurrency.ahead_of_live_niceness)
        self.gc = configure_gc(self.core.config.memory)
        self.sampler = ProcessSampler.for_component("synthesis", self.core.config)
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the render loop's, once it runs
        self._changed: asyncio.Event | None = None  # set when a change is queued: the loop wakes at once
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(station_names)),
                                        name="auralis-render", daemon=True)
        self._thread.start()

    def _station_actor(self, name: str):
        """The actor that holds station `name`."""
        config = self.core.config
        return ray.get_actor(station_actor_name(config, name), namespace=actor_namespace(config))

    async def _run(self, station_names: list[str]) -> None:
        """Attach the stations that are already up (the others attach themselves when they start),
        then render."""
        await asyncio.gather(*(self._attach_existing(name) for name in station_names))
        await self._render_loop()

    async def _attach_existing(self, name: str) -> None:
        try:
            handle = self._station_actor(name)
            info = await asyncio.wait_for(handle.attach_info.remote(name), ATTACH_TIMEOUT_SEC)
        except Exception as error:  # the station is not up yet: it attaches itself when it starts
            log.info("station %s not attached yet: %s", name, error)
            return
        self.core.attach(name, info["epoch"], info["next_chunk"],
                         StationParams.model_validate_json(info["params_json"]), info["seed"], handle)

    def attach_station(self, name: str, epoch: float, next_chunk: int, params_json: str, seed: int) -> None:
        handle = self._station_actor(name)
        self.core.attach(name, epoch, next_chunk, StationParams.model_validate_json(params_json), seed, handle)
        self._wake()

    def _wake(self) -> None:
        """Wake the render loop to apply a queued change (a restarted station waits for its audio)."""
        if self._loop is not None and self._changed is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    def set_params(self, name: str, params_json: str) -> None:
        self.core.set_params(name, StationParams.model_validate_json(params_json))
        self._wake()

    def status(self) -> dict:
        now = time.time()
        return {
            "stations": sorted(self.core.timelines),
            "lead_chunks": self.core.lead_chunks(now),
            "blocks_rendered": self.core.blocks_rendered,
            "mean_render_ms": round(1000 * self.core.async_engine.mean_render_time, 3),
            "device": self.core.engine.device_info.__dict__,
        }

    async def _push(self, rendered: dict[str, RenderedBlock]) -> None:
        """Hand each station its block; a station that is restarting does not hold up the others.

        Its block is delivered when it is back (Ray retries the call) and refused there if the
        restarted station has asked for a new continuation point in the meantime.
        """
        pushes = [asyncio.ensure_future(self.core.timelines[name].handle.ingest.remote(name, *block))
                  for name, block in rendered.items()]
        done, pending = await asyncio.wait(pushes, timeout=self.core.config.concurrency.station_fetch_timeout_sec)
        for push in pending:
            push.add_done_callback(_consume_result)
        for push in done:
            _consume_result(push)

    async def _render_loop(self) -> None:
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        push: asyncio.Task | None = None
        window_start, window_blocks = time.monotonic(), 0
        while not self._stop.is_set():
            now = time.time()
            self.sampler.sample(now)
            self.core.apply_commands()
            if not self.core.needs_render(now):
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.core.seconds_until_render(now, IDLE_WAKE_SEC)):
                        await self._changed.wait()
                continue
            try:
                rendered = await self.core.render()
                if push is not None:
                    await push  # at most one block in flight to the stations
                push = asyncio.create_task(self._push(rendered))
            except Exception:
                log.exception("render or push failed; retrying")
                push = None
                self.core.metrics.set_generation_rate(0.0)  # nothing is generated while renders fail
                window_start, window_blocks = time.monotonic(), 0
                await asyncio.sleep(0.2)
                continue
            self.gc.tick()
            window_blocks += 1
            elapsed = time.monotonic() - window_start
            if elapsed >= self.core.config.monitoring.metrics_collection_interval_sec:
                self.core.metrics.set_generation_rate(window_blocks / elapsed)
                window_start, window_blocks = time.monotonic(), 0

    def ping(self) -> str:
        return "ok"
