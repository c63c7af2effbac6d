"""Names of the Auralis actors, so operators find them in `ray list actors` and the dashboard.

They live in the Ray namespace `server.namespace` ("auralis" unless configured otherwise).
"""

from __future__ import annotations

from ..config import PerformanceConfig


def actor_namespace(config: PerformanceConfig) -> str:
    """The Ray namespace of every named actor of this deployment."""
    return config.server.namespace


def station_actor_count(config: PerformanceConfig) -> int:
    """How many station actors there are: `server.station_actors`, at most one per station."""
    return min(config.server.station_actors, len(config.server.stations))


def station_actor_index(config: PerformanceConfig, station: str) -> int:
    """Which station actor holds `station`: station i of `server.stations` lives in actor i mod the count."""
    names = [spec.name for spec in config.server.stations]
    return names.index(station) % station_actor_count(config)


def station_actor_name(config: PerformanceConfig, station: str) -> str:
    """The name of the actor that holds `station`."""
    return f"stations-{station_actor_index(config, station)}"


def synthesis_actor_name(index: int) -> str:
    return f"synthesis-{index}"


LISTENER_REGISTRY_NAME = "listener-registry"
