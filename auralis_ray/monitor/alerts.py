"""Prometheus alert rules, generated from the configuration.

``python -m auralis_ray.monitor.alerts > configs/prometheus/alerts.yml`` regenerates the committed
file (a test checks they agree, and runs ``promtool check rules`` when promtool is installed).

* Names are the series Ray 2.60 exports (``ray_`` prefix; histograms as ``_bucket``), taken from
  `metrics.METRICS`.
* ``histogram_quantile`` runs over ``sum by (le) (rate(..._bucket[w]))``: the quantile of the last
  window, not of everything since each process started.
* Counter rates also count a series born within the window (`_rate`): Ray exports a counter only
  once it has a value, and a restarted process's series is new, so its first count must not be lost.
* ``deriv()`` is per second, so the slope is multiplied by 3600 and compared to
  ``memory.leak_detection_threshold_mb_per_hour``.
  ``for: 1h`` with a 1h range means a process's warm-up ramp alone cannot fire it.
* Underruns are alerted per listener per station, not per client_id series (unbounded cardinality).
* Every threshold and window comes from `PerformanceConfig`; `monitoring.alert_severity_levels`
  chooses which severities are emitted, `monitoring.enable_alerts` whether any are.
* The default rules come from `AlertConfig.from_config`; rule names must be unique.
"""

from __future__ import annotations

import re
import sys
from enum import Enum

import yaml
from pydantic import BaseModel, Field, field_validator
from pydantic.dataclasses import dataclass

from auralis_ray.config import PerformanceConfig, load_config
from auralis_ray.monitor.metrics import (
    ACTIVE_CONNECTIONS,
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

GROUP_NAME = "auralis"
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


class AlertSeverity(Enum):
    """Alert severity levels."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class AlertRule:
    """Prometheus alert rule definition."""

    name: str
    severity: AlertSeverity
    expr: str  # PromQL expression
    for_duration: str  # e.g. "2m", "5m"
    summary: str
    description: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"alert name must be an identifier, got {v!r}")
        return v

    @field_validator("for_duration")
    @classmethod
    def _for(cls, v: str) -> str:
        if not _DURATION.fullmatch(v):
            raise ValueError(f"for_duration must be a Prometheus duration like '5m', got {v!r}")
        return v

    def to_prometheus(self) -> dict:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_duration,
            "labels": {"severity": self.severity.value},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def _num(x: float) -> str:
    return f"{x:g}"


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(window: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", window)
    if match is None:
        raise ValueError(f"a rate window is a number and one of s, m, h, d (e.g. 5m), got {window!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _rate(series: str, window: str) -> str:
    """Per-second rate of a counter over `window` that also counts a series born within it.

    `rate()` needs two samples, so a series that appears with its first count (a process that
    started, or restarted, with the event) loses that count; such a series counts from 0 here:
    its whole value over the window.
    """
    return f"(({series} unless {series} offset {window}) / {_seconds(window)} or rate({series}[{window}]))"


def _quantile(q: float, bucket_series: str, window: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({_num(q)}, sum by ({group}) ({_rate(bucket_series, window)}))"


def default_rules(config: PerformanceConfig) -> list[AlertRule]:
    """Every rule Auralis ships, thresholds from `config` (before severity filtering)."""
    mon, mem = config.monitoring, config.memory
    w = mon.alert_rate_window
    listeners = f'{ACTIVE_CONNECTIONS.exported()}{{component="ingress"}}'
    leak = _num(mem.leak_detection_threshold_mb_per_hour)
    S = AlertSeverity
    return [
        AlertRule(
            "BufferUnderruns", S.CRITICAL,
            f"sum by (station) ({_rate(BUFFER_UNDERRUNS.exported(), w)}) * 60"
            f" / clamp_min(sum by (station) ({listeners}), 1)"
            f" > {_num(mon.alert_underruns_per_listener_per_min)}",
            "2m", "Listeners of {{ $labels.station }} are running out of audio",
            "{{ $value | printf \"%.2f\" }} underruns per listener per minute on station "
            "{{ $labels.station }} (threshold " + _num(mon.alert_underruns_per_listener_per_min) + ").",
        ),
        AlertRule(
            "SynthesisLatencyHigh", S.CRITICAL,
            f"{_quantile(0.99, SYNTHESIS_LATENCY.exported('bucket'), w)} > {_num(config.target_latency_ms / 1000)}",
            "5m", "Synthesis p99 latency exceeds " + _num(config.target_latency_ms) + " ms",
            "p99 render time is {{ $value | humanizeDuration }} over the last " + w + ".",
        ),
        AlertRule(
            "PhraseGenerationStalled", S.CRITICAL,
            f"(sum({GENERATION_RATE.exported()}) <= 0) or absent({GENERATION_RATE.exported()})",
            "2m", "No phrases are being generated",
            "The synthesis actors report no phrase generation; stations will run dry.",
        ),
        AlertRule(
            "MemoryLeak", S.CRITICAL,
            f"deriv({MEMORY_USAGE.exported()}[1h]) * 3600 > {leak}",
            "1h", "Memory of a {{ $labels.component }} process keeps growing",
            "RSS grows {{ $value | printf \"%.1f\" }} MB/h (threshold " + leak + " MB/h) in worker "
            "{{ $labels.WorkerId }}.",
        ),
        AlertRule(
            "GPUMemoryLeak", S.HIGH,
            f"deriv({GPU_MEMORY.exported()}[1h]) * 3600 > {leak}",
            "1h", "GPU memory of a {{ $labels.component }} process keeps growing",
            "Allocated GPU memory grows {{ $value | printf \"%.1f\" }} MB/h (threshold " + leak + " MB/h).",
        ),
        AlertRule(
            "ChunkJitterP99High", S.HIGH,
            f"{_quantile(0.99, CHUNK_JITTER.exported('bucket'), w, 'station')} > {_num(mon.alert_jitter_p99_ms)}",
            "5m", "Chunk delivery p99 jitter above " + _num(mon.alert_jitter_p99_ms) + " ms",
            "Station {{ $labels.station }}: p99 lateness {{ $value | printf \"%.1f\" }} ms.",
        ),
        AlertRule(
            "ChunkJitterP95High", S.MEDIUM,
            f"{_quantile(0.95, CHUNK_JITTER.exported('bucket'), w, 'station')} > {_num(mon.alert_jitter_p95_ms)}",
            "10m", "Chunk delivery p95 jitter above " + _num(mon.alert_jitter_p95_ms) + " ms",
            "Station {{ $labels.station }}: p95 lateness {{ $value | printf \"%.1f\" }} ms.",
        ),
        AlertRule(
            "WebSocketSendErrors", S.MEDIUM,
            f"sum by (error_type) ({_rate(WEBSOCKET_ERRORS.exported(), w)})"
            f" > {_num(mon.alert_send_errors_per_sec)}",
            "5m", "WebSocket sends are failing",
            "{{ $value | printf \"%.2f\" }} failed sends per second ({{ $labels.error_type }}).",
        ),
        AlertRule(
            "ChunkEncodingSlow", S.MEDIUM,
            f"{_quantile(0.99, ENCODING_DURATION.exported('bucket'), w)} > {_num(mon.alert_encoding_p99_ms / 1000)}",
            "10m", "Chunk encoding p99 above " + _num(mon.alert_encoding_p99_ms) + " ms",
            "p99 encoding time is {{ $value | humanizeDuration }}.",
        ),
        AlertRule(
            "ListenersNearCapacity", S.MEDIUM,
            # the limit is per replica: the fullest replica's listeners, over its stations
            f"max(sum by (WorkerId) ({listeners})) > "
            f"{_num(mon.alert_connections_fraction * config.concurrency.max_concurrent_clients)}",
            "5m", "A replica's listener count near max_concurrent_clients",
            "{{ $value }} listeners on one replica; it refuses new listeners at "
            + str(config.concurrency.max_concurrent_clients) + ".",
        ),
        AlertRule(
            "FullGCFrequent", S.MEDIUM,
            _rate(GC_COLLECTIONS.exported() + '{generation="2"}', w) + f" > {_num(mon.alert_full_gc_per_sec)}",
            "10m", "Frequent full garbage collections in a {{ $labels.component }} process",
            "{{ $value | printf \"%.2f\" }} full collections per second; check memory.gc_* settings.",
        ),
    ]


class AlertConfig(BaseModel):
    """Alert configuration: the rules to emit."""

    rules: list[AlertRule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[AlertRule]) -> list[AlertRule]:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate alert rule names: {duplicates}")
        return rules

    @classmethod
    def from_config(cls, config: PerformanceConfig) -> "AlertConfig":
        mon = config.monitoring
        if not mon.enable_alerts:
            return cls(rules=[])
        levels = {AlertSeverity(level) for level in mon.alert_severity_levels}
        return cls(rules=[r for r in default_rules(config) if r.severity in levels])

    def to_prometheus_yaml(self) -> str:
        header = (
            "# Generated by `python -m auralis_ray.monitor.alerts` from the Auralis configuration.\n"
            "# Do not edit; change the configuration or auralis_ray/monitor/alerts.py and regenerate.\n"
        )
        doc = {"groups": [{"name": GROUP_NAME, "rules": [r.to_prometheus() for r in self.rules]}]}
        return header + yaml.safe_dump(doc, sort_keys=False, width=4096, allow_unicode=True)


def main() -> None:
    sys.stdout.write(AlertConfig.from_config(load_config()).to_prometheus_yaml())


if __name__ == "__main__":
    main()
