"""What one ingress replica holds. A module (not a global of app.py) so that the deployment class,
which Serve ships by value, and the route handlers, imported by name, share one object."""

from __future__ import annotations

from typing import Any

hub: Any = None
control_token: str = ""
replica_id: str | None = None
device: dict | None = None
gc_pauses: Any = None  # GCPauseTracker of this replica
shared_port_task: Any = None  # opens the shared port once the stations are ready
