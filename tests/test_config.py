"""The configuration tree: environment overrides, validation that names the bad setting."""

import json
import os
import subprocess
import sys

import pytest

from auralis_ray.config import ConfigError, PerformanceConfig, load_config


def test_defaults_follow_the_seed():
    config = load_config()
    assert config.buffer.initial_tier == "normal" and config.buffer.jitter_window_size == 50
    assert config.concurrency.thread_pool_workers == 2 and config.gpu.max_batch_size == 16
    assert [s.name for s in config.server.stations] == ["default"]


def test_environment_overrides_nested(monkeypatch):
    monkeypatch.setenv("AURALIS__BUFFER__ENABLE_ADAPTIVE_TIERS", "false")
    monkeypatch.setenv("AURALIS__GPU__COMPILE_MODE", "max-autotune")
    monkeypatch.setenv("AURALIS__SERVER__STATIONS", '[{"name":"a","preset":"sleep"},{"name":"b"}]')
    config = load_config()
    assert config.buffer.enable_adaptive_tiers is False and config.gpu.compile_mode == "max-autotune"
    assert [s.preset for s in config.server.stations] == ["sleep", "focus"]


@pytest.mark.parametrize("env,named", [
    ({"AURALIS__CONCURRENCY__THREAD_POOL_WORKERS": "0"}, "AURALIS__CONCURRENCY__THREAD_POOL_WORKERS"),
    ({"AURALIS__BUFFER__INITIAL_TIER": "huge"}, "AURALIS__BUFFER__INITIAL_TIER"),
    ({"AURALIS__BUFFER__JITTER_EMA_ALPHA": "abc"}, "AURALIS__BUFFER__JITTER_EMA_ALPHA"),
    ({"AURALIS__SERVER__STATIONS": '[{"name":"a"},{"name":"a"}]'}, "server.stations"),
    ({"AURALIS__SERVER__STATIONS": '[{"name":"a","preset":"loud"}]'}, "unknown preset 'loud'"),
    ({"AURALIS__SERVER__STATIONS": '[{"name":"a","bpm":500}]'}, "server.stations.0.bpm"),
    ({"AURALIS__BUFFER__REPLICA_FETCH_INTERVAL_SEC": "2.5"}, "buffer.replica_fetch_interval_sec"),
    ({"AURALIS__BUFFER__READY_AHEAD_CHUNKS": "25"}, "buffer.ready_ahead_chunks"),
    ({"AURALIS__BUFFER__CATCHUP_BEHIND_CHUNKS": "300"}, "buffer.catchup_behind_chunks"),
    ({"AURALIS__MONITORING__ALERT_SEVERITY_LEVELS": '["critical", "urgent"]'}, "monitoring.alert_severity_levels"),
    ({"AURALIS__MONITORING__ALERT_RATE_WINDOW": "0m"}, "monitoring.alert_rate_window"),
])
def test_bad_values_fail_naming_the_setting(monkeypatch, env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert named in str(info.value)


def test_bad_environment_stops_the_command_line_with_a_clear_message():
    env = {**os.environ, "AURALIS__GPU__MAX_BATCH_SIZE": "-3"}
    result = subprocess.run([sys.executable, "-m", "auralis_ray.cli", "config"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "gpu.max_batch_size (AURALIS__GPU__MAX_BATCH_SIZE)" in result.stderr


def test_the_command_line_shows_what_a_serve_config_gives_the_deployment(tmp_path, capsys, monkeypatch):
    from auralis_ray.cli import main

    monkeypatch.setenv("AURALIS__CONCURRENCY__MAX_CONCURRENT_CLIENTS", "3000")
    serve_yaml = tmp_path / "serve.yaml"
    serve_yaml.write_text("applications:\n  - args:\n      concurrency: {max_concurrent_clients: 50}\n")
    assert main(["config"]) == 0
    assert json.loads(capsys.readouterr().out)["concurrency"]["max_concurrent_clients"] == 3000
    assert main(["config", "--serve-config", str(serve_yaml)]) == 0
    assert json.loads(capsys.readouterr().out)["concurrency"]["max_concurrent_clients"] == 50, "the file's args win"


def test_serve_app_builder_refuses_bad_configuration(monkeypatch):
    from auralis_ray.serve.app import build_app

    monkeypatch.setenv("AURALIS__BUFFER__RING_CAPACITY_CHUNKS", "3")
    with pytest.raises(ConfigError, match="buffer.ring_capacity_chunks"):
        build_app({})


def test_round_trip_between_processes():
    config = load_config(server={"control_token": "t"})
    assert PerformanceConfig.model_validate_json(config.model_dump_json()) == config


def test_tier_names_come_from_the_stream_core():
    from typing import get_args

    from auralis_ray.config import BufferConfig
    from auralis_ray.stream.adaptive import TIER_ORDER, TIERS

    assert get_args(BufferConfig.model_fields["initial_tier"].annotation) == TIER_ORDER == tuple(TIERS)


def test_a_setting_that_does_not_exist_fails_at_start(monkeypatch):
    """Sections take no unknown fields: a setting that was removed (or misspelled) is not silently ignored."""
    monkeypatch.setenv("AURALIS__SERVER__HOST", "0.0.0.0")
    with pytest.raises(ConfigError, match="server.host"):
        load_config()


def test_a_new_revision_is_a_new_version_for_serve():
    """`server.revision` travels in the application's `args`, which Serve hashes into the code version
    of a `serve deploy`: a new revision replaces the replicas, the same one leaves them be."""
    import copy
    from pathlib import Path

    import yaml
    from ray.serve._private.deploy_utils import get_app_code_version
    from ray.serve.schema import ServeDeploySchema

    from auralis_ray.config import config_from_json
    from auralis_ray.serve.app import build_app

    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "configs" / "serve.yaml").read_text())

    def serve_version(revision: str) -> str:
        config = copy.deepcopy(raw)
        config["applications"][0]["args"].setdefault("server", {})["revision"] = revision
        return get_app_code_version(ServeDeploySchema.model_validate(config).applications[0])

    assert serve_version("1") == serve_version("1") != serve_version("2")
    # the replicas are built with it (each reports it in /api/status)
    app = build_app({"server": {"control_token": "t", "revision": "2"}})
    assert config_from_json(app._bound_deployment.init_args[0]).server.revision == "2"
