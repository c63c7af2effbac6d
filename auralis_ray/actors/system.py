"""Creating (or finding) the named actors of an Auralis deployment, and where they are placed.

Placement on a cluster:
- the synthesis actor asks for `gpu.gpu_fraction` of a GPU when the cluster has GPUs (and
  `gpu.device` is not `cpu`), so Ray schedules it on a GPU node; on a cluster without GPUs it asks
  for CPU only and renders on CPU. A node with a GPU Ray knows of but torch cannot use (a logical
  GPU, a CPU build of torch) still renders: `gpu.device=auto` falls back to CPU.
- station actors (each holding a group of stations, `server.station_actors` of them) are spread
  across nodes through a placement group with one small bundle per station actor and the SPREAD
  strategy: Ray places the bundles with the whole cluster in view and moves a
  dead node's bundles to the nodes left, so losing one node costs at most the stations that lived
  there, and each restarts elsewhere from its epoch and seed. (Measured here: the SPREAD strategy on
  the actors themselves put all three stations of a 3-node cluster on one node; a soft node
  affinity per station did so too, in 2 of 3 full test runs, when the preferred nodes' raylets
  turned the leases away.)
All actors are detached, named in the namespace `server.namespace` and restart without limit.
"""

from __future__ import annotations

import hashlib
import time

import ray
from ray.util.placement_group import PlacementGroup, get_placement_group, placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ..config import PerformanceConfig
from .names import LISTENER_REGISTRY_NAME, actor_namespace, station_actor_name, synthesis_actor_name
from .registry import ListenerRegistryActor
from .station import StationActor
from .synthesis import SynthesisActor

SYNTHESIS_CPUS = 1  # the render thread


# A bundle must hold some resource. A station asks for no CPU (it mostly waits on calls), and a
# CPU fraction here would also break the exact fit of synthesis and every ingress replica on a
# 2-core machine (configs/serve.yaml): 1 MiB of Ray's memory resource holds the place instead.
STATION_BUNDLE = {"memory": 1024 * 1024}


def station_placement_group(names: list[str], timeout: float = 60.0) -> PlacementGroup:
    """One bundle per station actor (`names`), spread over the nodes; named and detached, so every
    replica finds the same one (and a deploy with other stations gets its own)."""
    name = "auralis-stations-" + hashlib.sha1(",".join(names).encode()).hexdigest()[:12]
    try:
        group = get_placement_group(name)
    except ValueError:
        try:
            group = placement_group([dict(STATION_BUNDLE) for _ in names], strategy="SPREAD", name=name,
                                    lifetime="detached")
        except Exception:  # another replica created it first
            group = get_placement_group(name)
    ray.get(group.ready(), timeout=timeout)
    return group


def cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))


def cluster_has_gpu() -> bool:
    return cluster_gpus() > 0


def synthesis_resources(config: PerformanceConfig, gpus_in_cluster: float) -> dict:
    """Ray resources of the synthesis actor: a GPU fraction when the cluster has GPUs, else CPU only."""
    wants_gpu = config.gpu.device != "cpu" and gpus_in_cluster > 0
    return {"num_cpus": SYNTHESIS_CPUS, "num_gpus": config.gpu.gpu_fraction if wants_gpu else 0}


def ensure_system(config: PerformanceConfig) -> dict[str, "ray.actor.ActorHandle"]:
    """Get-or-create the synthesis actor and the station actors; return each station's actor by station.

    Idempotent (every ingress replica calls it); the first caller's epoch wins and, being a
    constructor argument, survives actor restarts.
    """
    config_json = config.model_dump_json()
    namespace = actor_namespace(config)
    synth_name = synthesis_actor_name(0)
    SynthesisActor.options(
        name=synth_name, namespace=namespace, lifetime="detached", get_if_exists=True,
        **synthesis_resources(config, cluster_gpus()),
    ).remote(config_json, [s.name for s in config.server.stations])
    epoch = round(time.time(), 3)
    groups: dict[str, list] = {}
    for spec in config.server.stations:
        groups.setdefault(station_actor_name(config, spec.name), []).append(spec)
    group = station_placement_group(sorted(groups))
    actors = {
        name: StationActor.options(
            name=name, namespace=namespace, lifetime="detached", get_if_exists=True,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index),
        ).remote([spec.model_dump_json() for spec in specs], config_json, epoch, synth_name)
        for index, (name, specs) in enumerate(sorted(groups.items()))
    }
    return {spec.name: actors[name] for name, specs in groups.items() for spec in specs}


def listener_registry(config: PerformanceConfig) -> "ray.actor.ActorHandle":
    """Get-or-create the cluster-wide client_id registry (duplicate ids across replicas)."""
    return ListenerRegistryActor.options(name=LISTENER_REGISTRY_NAME, namespace=actor_namespace(config),
                                         lifetime="detached", get_if_exists=True).remote()


def synthesis_handle(config: PerformanceConfig) -> "ray.actor.ActorHandle":
    return ray.get_actor(synthesis_actor_name(0), namespace=actor_namespace(config))
