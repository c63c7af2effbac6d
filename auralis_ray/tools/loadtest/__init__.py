"""Auralis load generator: many listeners written against docs/PROTOCOL.md, and a bare baseline.

`client.run_loadtest(config)` opens the listeners (WebSockets, or HTTP streams through
`http_client`) and returns a `report.LoadReport`; `baseline` is a minimal broadcast server
(`websockets`, or plain HTTP streams) to compare Auralis against. The per-listener logic
(`session`, `http_session`, `player`, `gaps`, `stalls`, `stats`) and the stream readers
(`httpbody`, `audioclock`) are pure and clock-free.
"""

from auralis_ray.tools.loadtest.config import Goals, LoadTestConfig
from auralis_ray.tools.loadtest.gaps import GapDetector
from auralis_ray.tools.loadtest.player import SimulatedPlayer
from auralis_ray.tools.loadtest.report import LoadReport

__all__ = ["GapDetector", "Goals", "LoadReport", "LoadTestConfig", "SimulatedPlayer"]
