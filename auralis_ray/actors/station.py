"""StationActor: holds the encoded rings of a group of stations, on schedule (logic in `stream/station.py`).

One process serves every station of its group (`server.station_actors` sets how many groups there
are): a process per station would cost each station a Ray worker's fixed CPU and memory at rest.

Chunk k is published at epoch + k * 100 ms. The epoch and the stations' specs are constructor
arguments, so a restarted actor (max_restarts) resumes every station at the right chunk_id; it then
asks its synthesis actor to re-render each from just past the live edge.

What a compressed listener hears when this actor restarts (every station of its group restarts): the
replicas play what they prefetched, then the restarted actor's chunks, which start a new compressed
stream, at the same cut where the PCM stream switches to the new timeline. Its Opus and MP3 encoders
are new: the last milliseconds the old encoders held back are never sent, and the new ones begin with
their start-up delay (Opus 6.5 ms, which an Ogg decoder skips; MP3 13 ms) of near-silence. Its Ogg
stream has a new serial number and new header pages (`CompressedForms.ogg_header`), which an HTTP
listener receives before the new pages: a chained Ogg stream, as a player sees when an Icecast
source reconnects.
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
from ..stream.codecs.encoders import load_codec_libraries
from ..stream.station import StationCore
from .names import actor_namespace

log = logging.getLogger(__name__)


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class StationActor:
    """A group of stations as one Ray actor (one process): takes each station's PCM from synthesis and
    serves its encoded chunks to the replicas. Every call names the station it is about."""

    def __init__(self, specs_json: list[str], config_json: str, epoch: float, synthesis_name: str):
        config = config_from_json(config_json)
        lower_priority(config.concurrency.ahead_of_live_niceness)
        metrics = get_metrics("station", config.monitoring)
        self.specs = {spec.name: spec for spec in map(StationSpec.model_validate_json, specs_json)}
        self.params = {name: spec.params() for name, spec in self.specs.items()}
        settings = station_settings(config)
        self.cores = {name: StationCore(name, epoch, settings, on_encode=metrics.observe_encoding_duration)
                      for name in self.specs}
        load_codec_libraries()  # now, not while a compressed listener waits for its first chunk
        self.gc = configure_gc(config.memory)
        self.sampler = ProcessSampler.for_component("station", config)
        self.synthesis_name = synthesis_name
        self.namespace = actor_namespace(config)
        for name in self.cores:
            self._attach(name)

    def _core(self, station: str) -> StationCore:
        try:
            return self.cores[station]
        except KeyError:
            raise KeyError(f"this station actor holds {sorted(self.cores)}, not {station!r}") from None

    def _attach(self, station: str) -> None:
        """Tell synthesis where a station's timeline continues (first start or after a restart)."""
        try:
            synth = ray.get_actor(self.synthesis_name, namespace=self.namespace)
        except ValueError:
            return  # synthesis is not up yet; it attaches stations itself when it starts
        core = self.cores[station]
        synth.attach_station.remote(station, core.epoch, core.next_needed_chunk(time.time()),
                                    self.params[station].model_dump_json(), self.specs[station].seed)

    def ingest(self, station: str, first_chunk_id: int, pcm: bytes, now_playing: list[dict] | None = None) -> int:
        """A rendered block of `station`, and the sections it plays (`NowPlaying` fields, as synthesis
        reports them)."""
        sections = [NowPlaying.from_dict(section) for section in now_playing or ()]
        return self._core(station).ingest(first_chunk_id, pcm, sections, now=time.time())

    def fetch(self, station: str, after_id: int, horizon_chunks: int, compressed: bool = True) -> dict:
        """{"epoch", "chunks": wire tuples (`EncodedChunk.from_transfer`), "now_playing": what sounds over
        them} (`StationCore.fetch_reply`); `compressed`: the replica has compressed listeners."""
        now = time.time()
        self.sampler.sample(now)
        self.gc.tick()
        return self._core(station).fetch_reply(after_id, horizon_chunks, now, compressed)

    def now_playing(self, station: str) -> dict | None:
        """The section sounding at the live edge, as `StationCore.now_playing_message` (None before any)."""
        core = self._core(station)
        playing = core.now_playing(time.time())
        return None if playing is None else core.now_playing_message(playing)

    def attach_info(self, station: str) -> dict:
        core = self._core(station)
        return {
            "epoch": core.epoch,
            "next_chunk": core.next_needed_chunk(time.time()),
            "params_json": self.params[station].model_dump_json(),
            "seed": self.specs[station].seed,
        }

    def info(self, station: str) -> dict:
        core = self._core(station)
        return {**core.info(time.time()), "seed": self.specs[station].seed,
                "params": self.params[station].model_dump()}

    async def set_params(self, station: str, params_json: str) -> dict:
        """Store a station's new parameters and hand them to synthesis (effective at its next phrase)."""
        self._core(station)
        params = StationParams.model_validate_json(params_json)
        synth = ray.get_actor(self.synthesis_name, namespace=self.namespace)
        await synth.set_params.remote(station, params_json)
        self.params[station] = params
        return params.model_dump()

    def stations(self) -> list[str]:
        return sorted(self.cores)

    def ping(self) -> str:
        return "ok"
