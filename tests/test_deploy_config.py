"""cluster.yaml through Ray's own cluster-config validation; configs/serve.yaml through Serve's schema."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from auralis_ray.actors.system import synthesis_resources
from auralis_ray.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def ray_up_validate(config: dict) -> dict:
    """What `ray up` does before it touches a cloud: fill defaults, then validate against Ray's schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_validation():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    prepared = ray_up_validate(config)
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    gpu_types = [name for name, t in types.items() if t["resources"].get("GPU", 0) > 0]
    assert gpu_types, "a worker type must declare GPU resources"
    setup = " ".join(prepared["setup_commands"] + prepared["head_setup_commands"] + prepared["worker_setup_commands"])
    assert "pip install" in setup and "~/auralis" in setup
    starts = prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]
    ray_starts = [c for c in starts if "ray start" in c]
    assert len(ray_starts) == 2 and all("--metrics-export-port=" in c for c in ray_starts)


def test_cluster_yaml_rejects_a_broken_config():
    import jsonschema

    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config["available_node_types"]["worker.gpu"]["resurces"] = {"GPU": 1}  # typo: unknown key
    with pytest.raises(jsonschema.ValidationError):
        ray_up_validate(config)


def test_readme_on_prem_variant_validates():
    """The README's on-prem (`provider: local`) example, once the lead has added it."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "type: local" in b]
    if not blocks:
        pytest.skip("README has no on-prem cluster example yet")
    config = yaml.safe_load(blocks[0])
    ray_up_validate(config)
    assert "--metrics-export-port=" in " ".join(config["head_start_ray_commands"])


def test_serve_yaml_passes_serve_schema():
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    app = schema.applications[0]
    assert app.import_path == "auralis_ray.serve.app:build_app"
    deployment = app.deployments[0]
    assert deployment.name == "AuralisIngress"
    autoscaling = deployment.autoscaling_config
    assert autoscaling["min_replicas"] >= 1 and autoscaling["max_replicas"] > autoscaling["min_replicas"]
    # long-lived sockets: a replica's slots cover its listener capacity, autoscaling targets listener load
    config = load_config(**app.args)
    assert deployment.max_ongoing_requests >= config.concurrency.max_concurrent_clients
    assert autoscaling["target_ongoing_requests"] < config.concurrency.max_concurrent_clients
    assert deployment.ray_actor_options.num_cpus > 0
    assert schema.http_options.request_timeout_s is None
    assert len(config.server.stations) >= 2


def test_a_replaced_replica_hands_over_before_serve_cuts_its_sockets():
    """The shutdown watch's poll, the drain and the handover fit in graceful_shutdown_timeout_s, in
    configs/serve.yaml and in the deployment's own defaults."""
    from ray.serve.schema import ServeDeploySchema

    from auralis_ray.serve.app import AuralisIngress
    from auralis_ray.serve.lifecycle import SHUTDOWN_WATCH_SEC

    def fits(config, graceful_shutdown_timeout_s: float) -> bool:
        drain = config.concurrency.drain_timeout_sec + config.concurrency.handover_wait_sec
        return config.concurrency.handover_wait_sec > 0 and SHUTDOWN_WATCH_SEC + drain < graceful_shutdown_timeout_s

    raw = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    app = ServeDeploySchema.model_validate(raw).applications[0]
    assert fits(load_config(**app.args), app.deployments[0].graceful_shutdown_timeout_s)
    assert fits(load_config(), AuralisIngress._deployment_config.graceful_shutdown_timeout_s)


def test_serve_yaml_args_are_a_valid_configuration():
    """`args:` are overrides of PerformanceConfig; build_app accepts them without a cluster."""
    from auralis_ray.serve.app import build_app

    raw = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    args = copy.deepcopy(raw["applications"][0]["args"])
    args.setdefault("server", {})["control_token"] = "t"
    app = build_app(args)
    assert app is not None


@pytest.mark.parametrize("device,gpus,expected", [
    ("auto", 0, 0), ("auto", 1, 0.5), ("cuda", 2, 0.5), ("cpu", 1, 0),
])
def test_synthesis_takes_a_gpu_fraction_only_when_the_cluster_has_one(device, gpus, expected):
    config = load_config(gpu={"device": device, "gpu_fraction": 0.5})
    resources = synthesis_resources(config, gpus)
    assert resources["num_gpus"] == expected and resources["num_cpus"] >= 1


def test_auto_device_falls_back_to_cpu_without_cuda(monkeypatch):
    """Ray sets CUDA_VISIBLE_DEVICES for a (logical) GPU; torch that sees none renders on CPU."""
    import torch

    from auralis_ray.synth.device import select_device

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto").type in ("cpu", "mps")
    with pytest.raises(RuntimeError):
        select_device("cuda")


def test_make_run_environment_comes_from_one_list_and_the_caller_overrides_it():
    import subprocess

    from auralis_ray.serve.local import shell_exports, system_env

    env = system_env("haproxy")
    assert env["RAY_worker_niceness"] == "0" and env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    exports = shell_exports(env, given={"RAY_SERVE_ENABLE_HA_PROXY": "0"})
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in exports, "a variable the caller set wins"
    seen = subprocess.run(["sh", "-c", exports + 'printf "%s" "$RAY_SERVE_HAPROXY_BALANCE_ALGORITHM"'],
                          capture_output=True, text=True, check=True).stdout
    assert seen == env["RAY_SERVE_HAPROXY_BALANCE_ALGORITHM"] == "uri path-only"
