"""Auralis load generator: many listeners written against docs/PROTOCOL.md, and a bare baseline.

`client.run_loadtest(config)` opens the listeners and returns a `report.LoadReport`;
`baseline` is a minimal `websockets` broadcast server to compare Auralis against.
The per-listener logic (`session`, `player`, `gaps`, `stats`) is pure and clock-free.
"""

from auralis_ray.tools.loadtest.config import Goals, LoadTestConfig
from auralis_ray.tools.loadtest.gaps import GapDetector
from auralis_ray.tools.loadtest.player import SimulatedPlayer
from auralis_ray.tools.loadtest.report import LoadReport

__all__ = ["GapDetector", "Goals", "LoadReport", "LoadTestConfig", "SimulatedPlayer"]
