"""Creating (or finding) the named actors of an Auralis deployment, and where they are placed.

Placement on a cluster:
- the synthesis actor asks for `gpu.gpu_fraction` of a GPU when the cluster has GPUs (and
  `gpu.device` is not `cpu`), so Ray schedules it on a GPU node; on a cluster without GPUs it asks
  for CPU only and renders on CPU. A node with a GPU Ray knows of but torch cannot use (a logical
  GPU, a CPU build of torch) still renders: `gpu.device=auto` falls back to CPU.
- station actors are spread across nodes, round-robin over the alive nodes with a *soft* node
  affinity (Ray's SPREAD strategy is best effort and, measured here, put all three stations of a
  3-node cluster on one node), so losing one node costs at most the stations that lived there, and
  each restarts elsewhere from its epoch and seed.
All actors are detached, named in namespace `auralis` and restart without limit.
"""

from __future__ import annotations

import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..config import PerformanceConfig
from .names import NAMESPACE, station_actor_name, synthesis_actor_name
from .station import StationActor
from .synthesis import SynthesisActor

SYNTHESIS_CPUS = 1  # the render thread


def station_placements(count: int) -> list[NodeAffinitySchedulingStrategy]:
    """Station i prefers alive node i mod N (sorted by id, so every replica computes the same)."""
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
    return [NodeAffinitySchedulingStrategy(node_id=nodes[i % len(nodes)], soft=True) for i in range(count)]


def cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))


def cluster_has_gpu() -> bool:
    return cluster_gpus() > 0


def synthesis_resources(config: PerformanceConfig, gpus_in_cluster: float) -> dict:
    """Ray resources of the synthesis actor: a GPU fraction when the cluster has GPUs, else CPU only."""
    wants_gpu = config.gpu.device != "cpu" and gpus_in_cluster > 0
    return {"num_cpus": SYNTHESIS_CPUS, "num_gpus": config.gpu.gpu_fraction if wants_gpu else 0}


def ensure_system(config: PerformanceConfig) -> dict[str, "ray.actor.ActorHandle"]:
    """Get-or-create the synthesis actor and one station actor per configured station.

    Idempotent (every ingress replica calls it); the first caller's epoch wins and, being a
    constructor argument, survives actor restarts.
    """
    config_json = config.model_dump_json()
    names = [s.name for s in config.server.stations]
    synth_name = synthesis_actor_name(0)
    SynthesisActor.options(
        name=synth_name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        **synthesis_resources(config, cluster_gpus()),
    ).remote(config_json, names)
    epoch = round(time.time(), 3)
    stations = {}
    placements = station_placements(len(config.server.stations))
    for spec, placement in zip(config.server.stations, placements):
        stations[spec.name] = StationActor.options(
            name=station_actor_name(spec.name), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            scheduling_strategy=placement,
        ).remote(spec.model_dump_json(), config_json, epoch, synth_name)
    return stations


def synthesis_handle() -> "ray.actor.ActorHandle":
    return ray.get_actor(synthesis_actor_name(0), namespace=NAMESPACE)
