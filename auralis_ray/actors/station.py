"""StationActor: the seed's broadcast actor. Holds the encoded ring for one station, on schedule.

Chunk k is published at epoch + k * 100 ms. The epoch and seed are constructor arguments, so a
restarted actor (max_restarts) resumes at the right chunk_id; it then asks its synthesis actor to
re-render from just past the live edge.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import ray

from ..config import StationSpec, config_from_json
from ..monitor.gc_config import configure_gc
from ..monitor.metrics import get_metrics
from ..monitor.process import ProcessSampler
from ..music.params import StationParams
from ..stream.broadcast import BroadcastRingBuffer
from ..stream.pool import AudioChunkPool
from ..stream.protocol import CHUNK_BYTES
from ..stream.schedule import live_chunk_id, publish_time
from .names import NAMESPACE

log = logging.getLogger(__name__)


def params_for(spec: StationSpec) -> StationParams:
    overrides = {k: getattr(spec, k) for k in ("key", "mode", "bpm", "intensity")}
    return StationParams.from_preset(spec.preset, **overrides)


class StationCore:
    """The station's logic without Ray: ingest PCM, encode once, serve by chunk_id."""

    def __init__(self, spec: StationSpec, config_json: str, epoch: float):
        self.config = config_from_json(config_json)
        self.spec = spec
        self.name = spec.name
        self.epoch = epoch
        self.params = params_for(spec)
        b = self.config.buffer
        self.ring = BroadcastRingBuffer(b.ring_capacity_chunks + b.lookahead_chunks + 20, b.catchup_behind_chunks)
        self.pool = AudioChunkPool(b.chunk_pool_size)
        self.metrics = get_metrics("station")
        self.encode_seconds = 0.0
        self.attach_points: deque[int] = deque(maxlen=8)
        self.refused_pushes = 0

    def ingest(self, first_chunk_id: int, pcm: bytes) -> int:
        """Store consecutive chunks rendered by synthesis; returns the next chunk_id wanted.

        Only a continuation is accepted: a block that starts at or before what is held, or exactly at
        a point this station instance asked synthesis to continue from. A push from a timeline this
        instance never asked for (in flight across a restart) would leave a hole, and is refused.
        """
        if len(pcm) % CHUNK_BYTES:
            raise ValueError(f"PCM length {len(pcm)} is not a whole number of chunks")
        held_to = self.ring.write_position
        continues = held_to is not None and first_chunk_id <= held_to
        if not continues and first_chunk_id not in self.attach_points:
            self.refused_pushes += 1
            if held_to is not None:
                return held_to
            return self.attach_points[-1] if self.attach_points else -1
        for i in range(len(pcm) // CHUNK_BYTES):
            cid = first_chunk_id + i
            if held_to is not None and cid < held_to:
                continue
            start = time.perf_counter()
            chunk = self.pool.encode_chunk(cid, publish_time(self.epoch, cid), pcm[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES])
            elapsed = time.perf_counter() - start
            self.encode_seconds += elapsed
            self.metrics.observe_encoding_duration(elapsed)
            self.ring.write_chunk(chunk)
        return self.ring.write_position

    def fetch(self, after_id: int, horizon_chunks: int, now: float) -> list[tuple]:
        """Encoded chunks with id > after_id, up to `horizon_chunks` past the live edge."""
        upto = live_chunk_id(self.epoch, now) + horizon_chunks
        return [c.to_wire() for c in self.ring.chunks_after(after_id, upto)]

    def next_needed_chunk(self, now: float) -> int:
        """Where synthesis should continue this station's timeline; remembered as an attach point.

        Both actors may ask at start (the station announcing itself, synthesis asking after its own
        start), so every recent point handed out is accepted, not only the last.
        """
        live = live_chunk_id(self.epoch, now)
        held = self.ring.write_position
        point = max(live + 2, held if held is not None else 0)
        self.attach_points.append(point)
        return point

    def info(self, now: float) -> dict:
        live = live_chunk_id(self.epoch, now)
        latest = self.ring.latest_id
        return {
            "name": self.name,
            "epoch": self.epoch,
            "seed": self.spec.seed,
            "params": self.params.model_dump(),
            "live_chunk_id": live,
            "rendered_until": latest,
            "lookahead_chunks": None if latest is None else latest - live,
            "ready": self.ring.holds(live),
            "encoded_chunks": self.pool.encoded_count,
            "refused_pushes": self.refused_pushes,
        }


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class StationActor:
    def __init__(self, spec_json: str, config_json: str, epoch: float, synthesis_name: str):
        self.core = StationCore(StationSpec.model_validate_json(spec_json), config_json, epoch)
        self.gc = configure_gc(self.core.config.memory)
        self.sampler = ProcessSampler(self.core.metrics, self.core.config.monitoring.metrics_collection_interval_sec)
        self.synthesis_name = synthesis_name
        self._attach()

    def _attach(self) -> None:
        """Tell synthesis where this station's timeline continues (first start or after a restart)."""
        try:
            synth = ray.get_actor(self.synthesis_name, namespace=NAMESPACE)
        except ValueError:
            return  # synthesis is not up yet; it attaches stations itself when it starts
        synth.attach_station.remote(self.core.name, self.core.epoch, self.core.next_needed_chunk(time.time()),
                                    self.core.params.model_dump_json(), self.core.spec.seed)

    def ingest(self, first_chunk_id: int, pcm: bytes) -> int:
        return self.core.ingest(first_chunk_id, pcm)

    def fetch(self, after_id: int, horizon_chunks: int) -> dict:
        now = time.time()
        self.sampler.sample(now)
        self.gc.on_render()
        return {"epoch": self.core.epoch, "chunks": self.core.fetch(after_id, horizon_chunks, now)}

    def attach_info(self) -> dict:
        return {
            "epoch": self.core.epoch,
            "next_chunk": self.core.next_needed_chunk(time.time()),
            "params_json": self.core.params.model_dump_json(),
            "seed": self.core.spec.seed,
        }

    def info(self) -> dict:
        return self.core.info(time.time())

    async def set_params(self, params_json: str) -> dict:
        """Store the new parameters and hand them to synthesis (effective at its next phrase)."""
        self.core.params = StationParams.model_validate_json(params_json)
        synth = ray.get_actor(self.synthesis_name, namespace=NAMESPACE)
        await synth.set_params.remote(self.core.name, params_json)
        return self.core.params.model_dump()

    def ping(self) -> str:
        return "ok"
