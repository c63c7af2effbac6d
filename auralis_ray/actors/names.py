"""Actor names in namespace `auralis`, so operators find them in `ray list actors` and the dashboard."""

NAMESPACE = "auralis"


def station_actor_name(station: str) -> str:
    return f"station-{station}"


def synthesis_actor_name(index: int) -> str:
    return f"synthesis-{index}"


LISTENER_REGISTRY_NAME = "listener-registry"
