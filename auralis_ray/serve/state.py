"""The ingress replica of this process. A module (not a global of app.py) so that the deployment
class, which Serve ships by value, and the route handlers, imported by name, share one object."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .replica import Replica

replica: Replica | None = None  # set once the deployment's constructor has started it
