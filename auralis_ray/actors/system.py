"""Creating (or finding) the named actors of an Auralis deployment."""

from __future__ import annotations

import time

import ray

from ..config import PerformanceConfig
from .names import NAMESPACE, station_actor_name, synthesis_actor_name
from .station import StationActor
from .synthesis import SynthesisActor


def cluster_has_gpu() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def ensure_system(config: PerformanceConfig) -> dict[str, "ray.actor.ActorHandle"]:
    """Get-or-create the synthesis actor and one station actor per configured station.

    Idempotent (every ingress replica calls it); the first caller's epoch wins and, being a
    constructor argument, survives actor restarts.
    """
    config_json = config.model_dump_json()
    names = [s.name for s in config.server.stations]
    synth_name = synthesis_actor_name(0)
    gpus = config.gpu.gpu_fraction if config.gpu.device != "cpu" and cluster_has_gpu() else 0
    SynthesisActor.options(
        name=synth_name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_gpus=gpus,
    ).remote(config_json, names)
    epoch = round(time.time(), 3)
    stations = {}
    for spec in config.server.stations:
        stations[spec.name] = StationActor.options(
            name=station_actor_name(spec.name), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            scheduling_strategy="SPREAD",
        ).remote(spec.model_dump_json(), config_json, epoch, synth_name)
    return stations


def synthesis_handle() -> "ray.actor.ActorHandle":
    return ray.get_actor(synthesis_actor_name(0), namespace=NAMESPACE)
