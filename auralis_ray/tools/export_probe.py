"""Prove how Ray exports Auralis metrics: start a throwaway Ray, record each of the eleven metrics
through `PerformanceMetrics` inside an actor, and scrape Ray's metrics export port until they appear.

    python -m auralis_ray.tools.export_probe [--timeout 30]

Prints JSON: ``{"port": ..., "elapsed_sec": ..., "series": {name: [label dicts]}}`` restricted to
the Auralis series, and exits 1 if any expected series is missing. Runs in its own process so it
never disturbs a Ray session the caller may hold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.request

from auralis_ray.monitor.metrics import METRICS

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def expected_series() -> set[str]:
    names = set()
    for spec in METRICS:
        if spec.kind == "histogram":
            names.update(spec.exported(s) for s in ("bucket", "sum", "count"))
        else:
            names.add(spec.exported())
    return names


def parse_exposition(text: str) -> dict[str, list[dict[str, str]]]:
    """Series name -> label sets, from Prometheus text exposition."""
    series: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match:
            series.setdefault(match.group(1), []).append(dict(_LABEL.findall(match.group(3) or "")))
    return series


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_all(metrics) -> None:
    """One record of each of the eleven metrics."""
    metrics.observe_synthesis_latency(0.042, batch_size=3)
    metrics.set_buffer_depth("probe", "normal", 7)
    metrics.observe_chunk_jitter("probe", 3.5)
    metrics.inc_buffer_underruns("probe")
    metrics.set_active_connections("probe", 2)
    metrics.inc_websocket_errors("ConnectionClosed")
    metrics.set_memory_usage(123.0)
    metrics.set_gpu_memory(0.0)
    metrics.observe_encoding_duration(0.0004)
    metrics.inc_gc_collections(2, 1)
    metrics.set_generation_rate(0.5)


def probe(timeout_sec: float) -> dict:
    import ray

    os.environ.pop("RAY_ADDRESS", None)
    port = _free_port()
    ray.init(address="local", num_cpus=1, include_dashboard=False, _metrics_export_port=port, log_to_driver=False)
    try:

        @ray.remote(num_cpus=0)
        class Recorder:
            """Records every metric once inside a Ray worker and returns the snapshot."""

            def record(self) -> dict:
                from auralis_ray.monitor.metrics import PerformanceMetrics

                metrics = PerformanceMetrics("station")
                record_all(metrics)
                return metrics.snapshot()

        recorder = Recorder.remote()
        snapshot = ray.get(recorder.record.remote(), timeout=timeout_sec)
        start = time.monotonic()
        wanted = expected_series()
        found: dict[str, list[dict[str, str]]] = {}
        while time.monotonic() - start < timeout_sec:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                found = {k: v for k, v in parse_exposition(body).items() if k in wanted}
            except OSError:
                pass
            if set(found) == wanted:
                break
            time.sleep(0.5)
        return {
            "port": port,
            "elapsed_sec": round(time.monotonic() - start, 2),
            "missing": sorted(wanted - set(found)),
            "export_errors": snapshot["export_errors"],
            "series": found,
        }
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=30.0)
    result = probe(parser.parse_args().timeout)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    sys.exit(1 if result["missing"] else 0)


if __name__ == "__main__":
    main()
