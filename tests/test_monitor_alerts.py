"""Generated configs: alerts.yml and the Grafana dashboard match their generators, use only series
Ray exports for Auralis, and pass promtool (when installed)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from auralis_ray.config import PerformanceConfig, load_config
from auralis_ray.monitor.alerts import AlertConfig, AlertRule, AlertSeverity, default_rules
from auralis_ray.tools.export_probe import expected_series
from auralis_ray.monitor.grafana import dashboard

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "configs" / "prometheus"
GRAFANA = ROOT / "configs" / "grafana" / "auralis.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.usefixtures("promtool")  # skips, or fails under CI=true, without it


@pytest.fixture
def clean_config(monkeypatch, tmp_path):
    """Defaults only: no AURALIS__ environment, no .env."""
    import os

    for key in list(os.environ):
        if key.startswith("AURALIS__"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return load_config()


def _series_in(expr: str) -> set[str]:
    return set(re.findall(r"\bray_[a-z_]+\b", expr))


def test_committed_alerts_equal_generated(clean_config):
    assert (PROM / "alerts.yml").read_text() == AlertConfig.from_config(clean_config).to_prometheus_yaml()


def test_committed_dashboard_equals_generated():
    assert json.loads(GRAFANA.read_text()) == dashboard()


def test_rules_use_only_exported_series_and_correct_functions(clean_config):
    rules = AlertConfig.from_config(clean_config).rules
    assert len(rules) == 11
    for rule in rules:
        assert _series_in(rule.expr) and _series_in(rule.expr) <= expected_series(), rule.name
        if "histogram_quantile" in rule.expr:
            assert re.search(r"histogram_quantile\([0-9.]+, sum by \(le[^)]*\) \(\(\(ray_\w+_bucket unless "
                             r"ray_\w+_bucket offset \w+\) / \d+ or rate\(ray_\w+_bucket\[", rule.expr), rule.expr
    by_name = {r.name: r for r in rules}
    assert by_name["MemoryLeak"].expr == "deriv(ray_memory_usage_mb[1h]) * 3600 > 20"
    assert by_name["SynthesisLatencyHigh"].expr.endswith("> 0.1")


def test_dashboard_queries_exported_series():
    panels = dashboard()["panels"]
    assert len(panels) == 12
    used = set()
    for panel in panels:
        for target in panel["targets"]:
            used |= _series_in(target["expr"])
    assert used == {name for name in expected_series() if not name.endswith(("_sum", "_count"))}


def test_thresholds_and_severities_come_from_config():
    cfg = PerformanceConfig(
        target_latency_ms=250,
        memory={"leak_detection_threshold_mb_per_hour": 7.5},
        monitoring={"alert_severity_levels": ["critical"], "alert_rate_window": "2m"},
    )
    rules = AlertConfig.from_config(cfg).rules
    assert {r.severity for r in rules} == {AlertSeverity.CRITICAL}
    exprs = {r.name: r.expr for r in rules}
    assert exprs["MemoryLeak"].endswith("* 3600 > 7.5")
    assert exprs["SynthesisLatencyHigh"].endswith("offset 2m) / 120 or rate(ray_synthesis_latency_seconds_bucket[2m])))) > 0.25")
    assert AlertConfig.from_config(PerformanceConfig(monitoring={"enable_alerts": False})).rules == []
    with pytest.raises(ValueError):
        AlertConfig.from_config(PerformanceConfig(monitoring={"alert_severity_levels": ["urgent"]}))


def test_rule_validation():
    rule = default_rules(PerformanceConfig())[0]
    with pytest.raises(ValidationError, match="duplicate"):
        AlertConfig(rules=[rule, rule])
    with pytest.raises(ValidationError, match="for_duration"):
        AlertRule("X", AlertSeverity.LOW, "up == 0", "5 minutes", "s", "d")
    with pytest.raises(ValidationError, match="identifier"):
        AlertRule("bad name", AlertSeverity.LOW, "up == 0", "5m", "s", "d")


def test_prometheus_yml_scrapes_ray_service_discovery():
    doc = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert doc["rule_files"] == ["alerts.yml"]
    (job,) = doc["scrape_configs"]
    assert job["file_sd_configs"][0]["files"] == ["/tmp/ray/session_latest/prom_metrics_service_discovery.json"]


def _promtool(*args, cwd=None):
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@needs_promtool
def test_promtool_check_rules_and_config():
    _promtool("check", "rules", str(PROM / "alerts.yml"))
    _promtool("check", "config", "--syntax-only", str(PROM / "prometheus.yml"))


@needs_promtool
def test_promtool_rule_unit_tests():
    """configs/prometheus/alerts_test.yml: leak slope per hour, warm-up, quantile over rate, ..."""
    _promtool("test", "rules", str(PROM / "alerts_test.yml"))


@needs_promtool
def test_promtool_parses_dashboard_queries(tmp_path):
    exprs = [t["expr"].replace("$__rate_interval", "5m") for p in dashboard()["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"auralis:panel_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    _promtool("check", "rules", str(path))


def test_every_alert_has_a_rule_test_where_its_series_are_absent_then_born_with_the_first_event():
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    covered = {case["alertname"] for test in tests
               if all(series["values"].startswith("_") for series in test["input_series"]
                      if "ray_active_websocket_connections" not in series["series"]
                      or len(test["input_series"]) == 1)
               for case in test["alert_rule_test"]}
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"][0]["rules"]
    assert covered == {rule["alert"] for rule in rules}
