"""StationActor: holds the encoded ring for one station, on schedule (logic in `stream/station.py`).

Chunk k is published at epoch + k * 100 ms. The epoch and the station's spec are constructor arguments, so a
restarted actor (max_restarts) resumes at the right chunk_id; it then asks its synthesis actor to
re-render from just past the live edge.

What a compressed listener hears when this actor restarts: the replicas play what they prefetched,
then the restarted actor's chunks, which start a new compressed stream, at the same cut where the
PCM stream switches to the new timeline. Its Opus and MP3 encoders are new: the last milliseconds the
old encoders held back are never sent, and the new ones begin with their start-up delay (Opus 6.5 ms,
which an Ogg decoder skips; MP3 13 ms) of near-silence. Its Ogg stream has a new serial number and new
header pages (`CompressedForms.ogg_header`), which an HTTP listener receives before the new pages: a
chained Ogg stream, as a player sees when an Icecast source reconnects.
"""

from __future__ import annotations

import logging
import time

import ray

from ..config import StationSpec, config_from_json
from ..core_settings import station_settings
from ..monitor.gc_config import configure_gc
from ..monitor.metrics import get_metrics
from ..monitor.priority import lower_priority
from ..monitor.process import ProcessSampler
from ..music.now_playing import NowPlaying
from ..music.params import StationParams
from ..stream.station import StationCore
from .names import actor_namespace

log = logging.getLogger(__name__)


def params_for(spec: StationSpec) -> StationParams:
    return StationParams.from_preset(spec.preset, key=spec.key, mode=spec.mode, bpm=spec.bpm, intensity=spec.intensity)


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class StationActor:
    """One station as a Ray actor: takes PCM from synthesis, serves encoded chunks to the replicas."""

    def __init__(self, spec_json: str, config_json: str, epoch: float, synthesis_name: str):
        config = config_from_json(config_json)
        lower_priority(config.concurrency.ahead_of_live_niceness)
        self.spec = StationSpec.model_validate_json(spec_json)
        self.params = params_for(self.spec)
        metrics = get_metrics("station")
        self.core = StationCore(self.spec.name, epoch, station_settings(config), on_encode=metrics.observe_encoding_duration)
        self.gc = configure_gc(config.memory)
        self.sampler = ProcessSampler.for_component("station", config)
        self.synthesis_name = synthesis_name
        self.namespace = actor_namespace(config)
        self._attach()

    def _attach(self) -> None:
        """Tell synthesis where this station's timeline continues (first start or after a restart)."""
        try:
            synth = ray.get_actor(self.synthesis_name, namespace=self.namespace)
        except ValueError:
            return  # synthesis is not up yet; it attaches stations itself when it starts
        synth.attach_station.remote(self.core.name, self.core.epoch, self.core.next_needed_chunk(time.time()),
                                    self.params.model_dump_json(), self.spec.seed)

    def ingest(self, first_chunk_id: int, pcm: bytes, now_playing: list[dict] | None = None) -> int:
        """A rendered block, and the sections it plays (`NowPlaying` fields, as synthesis reports them)."""
        sections = [NowPlaying.from_dict(section) for section in now_playing or ()]
        return self.core.ingest(first_chunk_id, pcm, sections, now=time.time())

    def fetch(self, after_id: int, horizon_chunks: int) -> dict:
        """{"epoch", "chunks": wire tuples (`EncodedChunk.from_transfer`), "now_playing": what sounds over
        them} (`StationCore.fetch_reply`)."""
        now = time.time()
        self.sampler.sample(now)
        self.gc.tick()
        return self.core.fetch_reply(after_id, horizon_chunks, now)

    def now_playing(self) -> dict | None:
        """The section sounding at the live edge, as `StationCore.now_playing_message` (None before any)."""
        playing = self.core.now_playing(time.time())
        return None if playing is None else self.core.now_playing_message(playing)

    def attach_info(self) -> dict:
        return {
            "epoch": self.core.epoch,
            "next_chunk": self.core.next_needed_chunk(time.time()),
            "params_json": self.params.model_dump_json(),
            "seed": self.spec.seed,
        }

    def info(self) -> dict:
        return {**self.core.info(time.time()), "seed": self.spec.seed, "params": self.params.model_dump()}

    async def set_params(self, params_json: str) -> dict:
        """Store the new parameters and hand them to synthesis (effective at its next phrase)."""
        self.params = StationParams.model_validate_json(params_json)
        synth = ray.get_actor(self.synthesis_name, namespace=self.namespace)
        await synth.set_params.remote(self.core.name, params_json)
        return self.params.model_dump()

    def ping(self) -> str:
        return "ok"
