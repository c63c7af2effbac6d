"""The Grafana dashboard for Auralis, generated from the metric definitions.

``python -m auralis_ray.monitor.grafana > configs/grafana/auralis.json`` regenerates the committed
file (a test checks they agree and that every panel queries a metric Auralis exports).
"""

from __future__ import annotations

import json
import sys

from auralis_ray.monitor.metrics import (
    ACTIVE_CONNECTIONS,
    BUFFER_DEPTH,
    BUFFER_UNDERRUNS,
    CHUNK_JITTER,
    ENCODING_DURATION,
    GC_COLLECTIONS,
    GENERATION_RATE,
    GPU_MEMORY,
    MEMORY_USAGE,
    SYNTHESIS_LATENCY,
    WEBSOCKET_ERRORS,
)

RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _quantiles(bucket: str, by: str = "", qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        (f"histogram_quantile({q}, sum by ({group}) (rate({bucket}[{RATE}])))", f"{prefix}p{round(q * 100)}")
        for q in qs
    ]


def _panels() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title, unit, [(PromQL, legend)]) for each panel, two per row."""
    listeners = f'{ACTIVE_CONNECTIONS.exported()}{{component="ingress"}}'
    return [
        ("Synthesis latency", "s", _quantiles(SYNTHESIS_LATENCY.exported("bucket"))),
        ("Phrase generation rate", "hertz", [(f"sum({GENERATION_RATE.exported()})", "phrases/s")]),
        ("Chunk delivery jitter", "ms", _quantiles(CHUNK_JITTER.exported("bucket"), "station", (0.95, 0.99))),
        ("Buffer depth (chunks behind live edge)", "short",
         [(f"avg by (station, tier) ({BUFFER_DEPTH.exported()})", "{{station}} {{tier}}")]),
        ("Buffer underruns per minute", "short",
         [(f"sum by (station) (rate({BUFFER_UNDERRUNS.exported()}[{RATE}])) * 60", "{{station}}")]),
        ("Active WebSocket listeners", "short", [(f"sum by (station) ({listeners})", "{{station}}")]),
        ("WebSocket send errors per second", "short",
         [(f"sum by (error_type) (rate({WEBSOCKET_ERRORS.exported()}[{RATE}]))", "{{error_type}}")]),
        ("Chunk encoding duration", "s", _quantiles(ENCODING_DURATION.exported("bucket"), "", (0.5, 0.99))),
        ("Process memory (RSS)", "decmbytes",
         [(MEMORY_USAGE.exported(), "{{component}} {{WorkerId}}")]),
        ("Memory growth (MB/h, 1h slope)", "short",
         [(f"deriv({MEMORY_USAGE.exported()}[1h]) * 3600", "{{component}} {{WorkerId}}")]),
        ("GPU memory allocated", "decmbytes", [(GPU_MEMORY.exported(), "{{component}} {{WorkerId}}")]),
        ("GC collections per second", "short",
         [(f"sum by (component, generation) (rate({GC_COLLECTIONS.exported()}[{RATE}]))",
           "{{component}} gen {{generation}}")]),
    ]


def dashboard() -> dict:
    panels = []
    for i, (title, unit, queries) in enumerate(_panels()):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + j)}
                    for j, (expr, legend) in enumerate(queries)
                ],
            }
        )
    return {
        "uid": "auralis",
        "title": "Auralis",
        "tags": ["auralis", "ray"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"}
            ]
        },
        "panels": panels,
    }


def main() -> None:
    sys.stdout.write(json.dumps(dashboard(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
