"""Names of the Auralis actors, so operators find them in `ray list actors` and the dashboard.

They live in the Ray namespace `server.namespace` ("auralis" unless configured otherwise).
"""

from __future__ import annotations

from ..config import PerformanceConfig


def actor_namespace(config: PerformanceConfig) -> str:
    """The Ray namespace of every named actor of this deployment."""
    return config.server.namespace


def station_actor_name(station: str) -> str:
    return f"station-{station}"


def synthesis_actor_name(index: int) -> str:
    return f"synthesis-{index}"


LISTENER_REGISTRY_NAME = "listener-registry"
