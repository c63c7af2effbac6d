"""Ray really exports the eleven metrics under the names alerts.yml and the dashboard use.

Runs `auralis_ray.tools.export_probe` in its own process: a throwaway Ray (num_cpus=1, no
dashboard, `_metrics_export_port` on a free port), an actor recording each metric through
PerformanceMetrics, and a bounded scrape (30 s) of the export port.
"""

import json
import os
import subprocess
import sys

import pytest

from auralis_ray.serve.local import RAY_ENV
from auralis_ray.tools.export_probe import expected_series, parse_exposition


def test_parse_exposition():
    text = (
        '# TYPE ray_x_total counter\n'
        'ray_x_total{component="station",station="a \\"b\\""} 3.0\n'
        'ray_y 1\n'
    )
    assert parse_exposition(text) == {"ray_x_total": [{"component": "station", "station": 'a \\"b\\"'}],
                                      "ray_y": [{}]}


@pytest.mark.own_ray
@pytest.mark.timeout(120)
def test_ray_exports_all_eleven_metrics_with_ray_prefix():
    # Ray as Auralis runs it (its metrics report interval among the rest)
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, **RAY_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "auralis_ray.tools.export_probe", "--timeout", "30"],
        capture_output=True, text=True, timeout=110, env=env,
    )
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["missing"] == [], report
    assert set(report["series"]) == expected_series()
    assert report["export_errors"] == 0
    labels = {name: sets[0] for name, sets in report["series"].items()}
    assert labels["ray_buffer_depth_chunks"]["station"] == "probe"
    assert labels["ray_buffer_depth_chunks"]["tier"] == "normal"
    assert labels["ray_synthesis_latency_seconds_count"]["batch"] == "4"
    assert labels["ray_gc_collections_total"]["generation"] == "2"
    assert labels["ray_websocket_send_errors_total"]["error_type"] == "ConnectionClosed"
    assert all(sets[0]["component"] == "station" for sets in report["series"].values())
    assert {s["le"] for s in report["series"]["ray_chunk_delivery_jitter_ms_bucket"]} >= {"50.0", "+Inf"}
    assert result.returncode == 0
