"""Auralis on a 3-node `ray.cluster_utils.Cluster`: placement, and failures listeners must not hear.

Nodes: a CPU head (Serve controller, HTTP proxy), a worker with one logical GPU and a CPU worker.
The application is deployed from `configs/serve.yaml` (test overrides applied to the loaded file)
through `deploy_apps`, the call `serve run configs/serve.yaml` and `serve deploy` make.

Ray allows one driver per process, and the session fixture `auralis_server` may already hold this
process's. So the cluster's driver runs in a child process (this file run as a script, a line-based
JSON RPC on stdin/stdout); the tests talk to it and to the server with real WebSocket listeners.

Faults, each with >= 5 listeners measuring gaps and underruns: synthesis actor killed, a station
actor killed, an ingress replica killed, a worker node removed, a new version deployed, a drain.
Recovery times (kill -> listeners receive chunks on schedule again) go to
test-artifacts/fault_recovery.json and BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from auralis_ray.serve.local import RAY_ENV, free_port, wait_ready

sys.path.insert(0, str(Path(__file__).resolve().parent))
from listeners import LATE_MS, Playing, Session, playing  # noqa: E402
from waiting import wait_until_async  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVE_YAML = ROOT / "configs" / "serve.yaml"
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "cluster-test-token"
STATIONS = [{"name": "alpha", "preset": "focus", "seed": 5},
            {"name": "beta", "preset": "sleep", "seed": 6},
            {"name": "gamma", "preset": "meditation", "seed": 7}]
# one station actor per station, spread over the three nodes (a group of stations in one actor is
# killed in test_integration_stream.py)
STATION_ACTORS = 3
RPC = "@@rpc "
DRAIN_SEC = 3.0
# the replaced replica's wait for a successor (benchmarks/deploy_under_load.sh sets it to compare)
HANDOVER_SEC = float(os.environ.get("AURALIS_TEST_HANDOVER_SEC", "6.0"))


def station_actor(station: str) -> str:
    """The name of the actor that holds `station` (station i lives in actor i mod STATION_ACTORS)."""
    index = [s["name"] for s in STATIONS].index(station)
    return f"stations-{index % STATION_ACTORS}"


def serve_config(port: int, shared_port: int, version: str = "v1", replicas: int = 2) -> dict:
    """configs/serve.yaml as loaded, with the overrides a 2-core test machine needs."""
    import yaml

    config = yaml.safe_load(SERVE_YAML.read_text())
    config["proxy_location"] = "HeadOnly"  # every node's proxy would bind the same port on one machine
    config["http_options"]["port"] = port
    app = config["applications"][0]
    args = copy.deepcopy(app["args"])
    args["server"] = {**args.get("server", {}), "stations": STATIONS, "control_token": TOKEN,
                      "shared_port": shared_port, "station_actors": STATION_ACTORS}
    args["concurrency"] = {**args.get("concurrency", {}), "drain_timeout_sec": DRAIN_SEC,
                           "handover_wait_sec": HANDOVER_SEC, "max_concurrent_clients": 100}
    args["monitoring"] = {"metrics_collection_interval_sec": 1}
    args["server"]["revision"] = version  # a new revision: a new version (rolling update)
    app["args"] = args
    deployment = app["deployments"][0]
    # long enough for a replica being replaced to notice (<= 1 s), drain (DRAIN_SEC), wait for another
    # replica to accept (HANDOVER_SEC at most) and close with 1012
    deployment["graceful_shutdown_timeout_s"] = DRAIN_SEC + HANDOVER_SEC + 2
    deployment["autoscaling_config"].update(min_replicas=replicas, initial_replicas=replicas,
                                            max_replicas=replicas)
    deployment["ray_actor_options"] = {**deployment.get("ray_actor_options", {}), "num_cpus": 0.1}
    return config


# ---- the driver (child process) ----------------------------------------------------------------

class Driver:
    """Owns the cluster and the Ray connection; one method per RPC command."""

    def __init__(self):
        self.cluster = None
        self.nodes: dict[str, object] = {}

    def start(self, port: int, shared_port: int) -> dict:
        import ray
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 2, "include_dashboard": False, "resources": {"head": 1},
            # notice a dead node in ~3 s instead of Ray's default ~15 s (see README, running on a cluster)
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}})
        self.nodes["head"] = self.cluster.head_node
        self.nodes["gpu"] = self.cluster.add_node(num_cpus=2, num_gpus=1)  # synthesis needs 1 CPU + the GPU; replicas may land here too
        self.nodes["cpu"] = self.cluster.add_node(num_cpus=1)
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address, namespace="auralis", log_to_driver=False)
        return {**self.deploy(serve_config(port, shared_port), start=True), "nodes": self.node_ids()}

    def node_ids(self) -> dict:
        return {role: node.node_id for role, node in self.nodes.items()}

    def deploy(self, config: dict, start: bool = False) -> dict:
        from ray.serve._private import api as serve_api
        from ray.serve.schema import ServeDeploySchema

        schema = ServeDeploySchema.model_validate(config)
        if start:
            serve_api.serve_start(http_options=schema.http_options.model_dump(),
                                  proxy_location=schema.proxy_location)
        from ray.serve.context import _get_global_client

        _get_global_client().deploy_apps(schema, _blocking=False)
        return {"deployed_at": time.time()}

    def actors(self) -> list[dict]:
        import ray

        namespaces = {a["name"]: a["namespace"] for a in ray.util.list_named_actors(all_namespaces=True)}
        out = []
        for info in ray._private.state.actors().values():
            name = info.get("Name", "")
            out.append({"name": name, "namespace": namespaces.get(name, ""), "state": info["State"],
                        "node_id": info["Address"].get("NodeID"), "restarts": info.get("NumRestarts", 0),
                        "class": info.get("ActorClassName", "")})
        return out

    def free_gpus(self) -> dict:
        import ray

        per_node = ray._private.state.available_resources_per_node()
        return {role: per_node.get(node.node_id, {}).get("GPU", 0.0) for role, node in self.nodes.items()}

    def synthesis_status(self) -> dict:
        import ray

        return ray.get(ray.get_actor("synthesis-0", namespace="auralis").status.remote(), timeout=10)

    def station_info(self, name: str) -> dict:
        import ray

        return ray.get(ray.get_actor(station_actor(name), namespace="auralis").info.remote(name), timeout=10)

    def kill(self, name: str, namespace: str, no_restart: bool = False) -> dict:
        import ray

        handle = ray.get_actor(name, namespace=namespace)
        at = time.time()
        ray.kill(handle, no_restart=no_restart)
        return {"killed_at": at}

    def remove_node(self, role: str) -> dict:
        at = time.time()
        self.cluster.remove_node(self.nodes.pop(role), allow_graceful=False)
        return {"removed_at": at}

    def shutdown(self) -> dict:
        import ray
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            self.cluster.shutdown()
        return {}


def driver_main() -> None:
    driver = Driver()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"ok": getattr(driver, request["cmd"])(**request.get("args", {}))}
        except Exception as error:  # reported to the test, which fails with it
            reply = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(RPC + json.dumps(reply) + "\n")
        sys.stdout.flush()
        if request["cmd"] == "shutdown":
            return


class ClusterProcess:
    """The test side of the driver."""

    def __init__(self):
        # Ray as cluster.yaml starts it on every node (workers at nice 0, not behind Ray's own
        # processes); Serve's own proxy on the head only (one machine cannot host a per-node HAProxy
        # each); replicas serve their own ports and the shared port (direct ingress)
        env = {**os.environ, **RAY_ENV, "PYTHONUNBUFFERED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "0",
               "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1"}
        self.log = open(ARTIFACTS / "cluster-driver.log", "w")
        self.proc = subprocess.Popen([sys.executable, __file__], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)

    def call(self, cmd: str, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"cluster driver exited ({self.proc.poll()}); see test-artifacts/cluster-driver.log")
            if line.startswith(RPC):
                reply = json.loads(line[len(RPC):])
                if "error" in reply:
                    raise RuntimeError(f"driver {cmd}: {reply['error']}")
                return reply["ok"]

    async def acall(self, cmd: str, **args):
        return await asyncio.to_thread(self.call, cmd, **args)

    def close(self) -> None:
        try:
            self.call("shutdown")
            self.proc.wait(60)
        except Exception:
            self.proc.kill()  # our own child, by its handle
        self.log.close()


# ---- fixtures -------------------------------------------------------------------------------------

@dataclass
class ClusterServer:
    driver: ClusterProcess
    port: int  # Serve's proxy
    shared_port: int  # the replicas' own front door
    nodes: dict
    results: dict

    def url(self, client_id: str, station: str, fmt: str = "binary", shared: bool = False) -> str:
        port = self.shared_port if shared else self.port
        return f"ws://127.0.0.1:{port}/ws/audio/{client_id}?station={station}&format={fmt}"


@pytest.fixture(scope="module")
def cluster_server():
    ARTIFACTS.mkdir(exist_ok=True)
    driver = ClusterProcess()
    port, shared_port = free_port(), free_port()
    try:
        started = time.time()
        reply = driver.call("start", port=port, shared_port=shared_port)
        wait_ready(f"http://127.0.0.1:{port}", timeout=120.0)
        wait_ready(f"http://127.0.0.1:{shared_port}", timeout=60.0)
        server = ClusterServer(driver, port, shared_port, reply["nodes"],
                               {"startup_s": round(time.time() - started, 1)})
        yield server
    finally:
        driver.close()
    (ARTIFACTS / "fault_recovery.json").write_text(json.dumps(server.results, indent=2))


async def play(server: ClusterServer, seconds: float, n: int, station: str, prefix: str,
               resume: bool = True, shared: bool = False) -> Playing:
    """n listeners of `station` (alternating binary and JSON frames), started together for at most
    `seconds`, returned once every one hears the stream."""
    return await playing([(server.url(f"{prefix}{i}", station, "binary" if i % 2 == 0 else "json", shared),
                           f"{prefix}{i}") for i in range(n)], seconds, resume=resume)


def summarize(recs: list[Session], since: float) -> dict:
    recov = [r.recovery(since, LATE_MS) for r in recs]
    return {
        "listeners": len(recs),
        "unannounced_gaps": sum(r.unannounced_gaps() for r in recs),
        "announced_skips": sum(1 for r in recs for kind, v in r.events if kind == "error" and v == "BUFFER_OVERRUN"),
        "underruns_500ms": sum(r.underruns(500) for r in recs),
        "underruns_1000ms": sum(r.underruns(1000) for r in recs),
        "reconnects": sum(len(r.reconnects) for r in recs),
        "on_schedule_after_s_max": max(x["on_schedule_after_s"] for x in recov),
        "max_silence_s": max((x["max_silence_s"] or 0) for x in recov),
        "close_codes": sorted({str(code) for r in recs for _, code in r.closes}),
        "failed_connects": sum(1 for r in recs for _, code in r.closes if code == -1),
    }


def by_name(actors: list[dict], name: str, namespace: str = "auralis") -> dict:
    alive = [a for a in actors if a["name"] == name and a["namespace"] == namespace]
    assert alive, f"no actor {namespace}/{name}"
    return alive[0]


async def wait_alive(server: ClusterServer, name: str, restarts_at_least: int, timeout: float = 60) -> float:
    async def alive() -> bool:
        actor = by_name(await server.driver.acall("actors"), name)
        return actor["state"] == "ALIVE" and actor["restarts"] >= restarts_at_least

    await wait_until_async(alive, timeout, f"{name} to come back", poll=0.2)
    return time.time()


def ingress_replicas(actors: list[dict]) -> list[dict]:
    """The ingress replica actors that are alive."""
    return [a for a in actors if a["namespace"] == "serve" and "AuralisIngress" in a["name"] and a["state"] == "ALIVE"]


pytestmark = [pytest.mark.cluster, pytest.mark.integration]


# ---- placement --------------------------------------------------------------------------------------

def test_every_actor_lands_where_intended(cluster_server):
    actors = cluster_server.driver.call("actors")
    nodes = cluster_server.nodes
    synth = by_name(actors, "synthesis-0")
    assert synth["state"] == "ALIVE"
    assert synth["node_id"] == nodes["gpu"], "the synthesis actor must run on the GPU node"
    # it holds gpu.gpu_fraction (1.0 in configs/serve.yaml) of the only GPU
    assert cluster_server.driver.call("free_gpus")["gpu"] == 0.0
    stations = [by_name(actors, station_actor(s['name'])) for s in STATIONS]
    assert all(s["state"] == "ALIVE" for s in stations)
    assert len({s["node_id"] for s in stations}) >= 2, "stations must spread across nodes"
    # a logical GPU with a CPU build of torch: synthesis still renders, on CPU
    status = cluster_server.driver.call("synthesis_status")
    assert status["device"]["device_type"] == "cpu" and status["blocks_rendered"] > 0
    assert sorted(status["stations"]) == sorted(s["name"] for s in STATIONS)
    replicas = ingress_replicas(actors)
    assert len(replicas) == 2
    cluster_server.results["placement"] = {
        "synthesis": [k for k, v in nodes.items() if v == synth["node_id"]],
        "stations": {s["name"]: [k for k, v in nodes.items() if v == s["node_id"]][0] for s in stations},
        "replicas": [[k for k, v in nodes.items() if v == r["node_id"]][0] for r in replicas],
    }


# ---- the shared port ----------------------------------------------------------------------------------

async def replicas_behind(port: int, connections: int = 64) -> dict[str, int]:
    """replica id -> its own port, as answered over `connections` new connections to `port`."""
    import httpx

    seen: dict[str, int] = {}
    for _ in range(connections):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            status = (await http.get("/api/status")).json()
        assert status["shared_port_open"]
        seen[status["replica"]] = status["replica_port"]
    return seen


async def test_shared_port_spreads_listeners_and_replaces_a_duplicate_on_another_replica(cluster_server):
    from listeners import listen, listening

    replicas = await replicas_behind(cluster_server.shared_port)
    assert len(replicas) == 2, f"both replicas accept on the shared port: {replicas}"
    first_port, second_port = sorted(replicas.values())
    older = await listening(f"ws://127.0.0.1:{first_port}/ws/audio/twin?station=alpha&format=binary", 6.0)
    newer = await listen(f"ws://127.0.0.1:{second_port}/ws/audio/twin?station=alpha&format=binary", 2.0)
    old = await older
    assert old.close_code == 4000, "the newer socket on the other replica replaces the older one"
    assert len(newer.order) >= 15 and newer.close_code is None
    import httpx

    async with httpx.AsyncClient(timeout=5) as http:
        metrics = (await http.get(f"http://127.0.0.1:{first_port}/api/metrics")).json()
    assert metrics["replaced_from_other_replicas"] >= 1


# ---- faults -----------------------------------------------------------------------------------------

async def test_kill_synthesis_lookahead_covers_the_restart(cluster_server):
    group = await play(cluster_server, 30.0, 5, "alpha", "syn")
    killed_at = (await cluster_server.driver.acall("kill", name="synthesis-0", namespace="auralis"))["killed_at"]
    alive_at = await wait_alive(cluster_server, "synthesis-0", 1)
    rendering_at, status = None, {}
    while time.time() - killed_at < 30:
        try:
            status = await cluster_server.driver.acall("synthesis_status")
            if status["blocks_rendered"] > 0:
                rendering_at = time.time()
                break
        except RuntimeError:
            pass
        await asyncio.sleep(0.2)
    crossfades, crossfaded_at = 0, time.time()
    while rendering_at is not None and time.time() - killed_at < 30:
        crossfades = (await cluster_server.driver.acall("station_info", name="alpha"))["crossfades"]
        crossfaded_at = time.time()
        if crossfades:
            break
        await asyncio.sleep(0.2)
    recs = await group.until_on_schedule(crossfaded_at)
    summary = summarize(recs, killed_at)
    summary.update(crossfades_alpha=crossfades, actor_alive_after_s=round(alive_at - killed_at, 2),
                   rendering_after_s=None if rendering_at is None else round(rendering_at - killed_at, 2),
                   lead_chunks_after=status.get("lead_chunks"))
    cluster_server.results["kill_synthesis"] = summary
    assert rendering_at is not None, "synthesis did not render again"
    assert crossfades == 1, "the new timeline is crossfaded into what the station holds"
    assert summary["unannounced_gaps"] == 0 and summary["announced_skips"] == 0
    assert summary["underruns_500ms"] == 0, summary
    assert summary["reconnects"] == 0


async def test_kill_station_restarts_at_the_right_chunk(cluster_server):
    group = await play(cluster_server, 20.0, 5, "beta", "sta")
    killed_at = (await cluster_server.driver.acall("kill", name=station_actor("beta"), namespace="auralis"))["killed_at"]
    alive_at = await wait_alive(cluster_server, station_actor("beta"), 1)
    recs = await group.until_on_schedule(alive_at)
    summary = summarize(recs, killed_at)
    summary["actor_alive_after_s"] = round(alive_at - killed_at, 2)
    cluster_server.results["kill_station"] = summary
    assert summary["unannounced_gaps"] == 0, summary  # at most an announced skip
    for rec in recs:
        # the restarted station continues the same timeline: chunk ids keep matching the wall clock
        tail = list(zip(rec.order, rec.timestamps))[-20:]
        assert len(tail) == 20 and all(b[0] - a[0] == 1 for a, b in zip(tail, tail[1:]))
        assert all(abs((b[1] - a[1]) - 0.1) < 1e-3 for a, b in zip(tail, tail[1:]))
        assert rec.arrivals[-1] - rec.timestamps[-1] < 0.5, "listeners are back at the live edge"


async def replica_with_listeners(port: int, replicas: list[dict]) -> dict:
    """The replica actor that holds listeners: /api/status names the replica that answered."""
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        for _ in range(40):
            status = (await http.get("/api/status")).json()
            if status["listeners"] > 0 and status["replica"]:
                for actor in replicas:
                    if actor["name"].endswith(status["replica"]):
                        return actor
            await asyncio.sleep(0.1)
    raise AssertionError("no replica reported listeners")


async def test_kill_ingress_replica_listeners_resume_without_gap(cluster_server):
    group = await play(cluster_server, 25.0, 8, "gamma", "rep")
    replicas = ingress_replicas(await cluster_server.driver.acall("actors"))
    target = await replica_with_listeners(cluster_server.port, replicas)
    killed_at = (await cluster_server.driver.acall("kill", name=target["name"], namespace="serve",
                                                  no_restart=True))["killed_at"]
    recs = await group.until_on_schedule(killed_at)
    summary = summarize(recs, killed_at)
    cluster_server.results["kill_ingress_replica"] = summary
    assert summary["reconnects"] >= 1, "no listener was on the killed replica"
    assert summary["unannounced_gaps"] == 0, summary
    assert summary["announced_skips"] == 0, "the resume point must still be held"
    assert all(r.on_schedule_since(killed_at) for r in recs), "every listener is back on schedule"


async def test_remove_worker_node_actors_move_and_listeners_recover(cluster_server):
    nodes = cluster_server.nodes
    actors = await cluster_server.driver.acall("actors")
    on_cpu = [s["name"] for s in STATIONS if by_name(actors, station_actor(s['name']))["node_id"] == nodes["cpu"]]
    station = on_cpu[0] if on_cpu else STATIONS[0]["name"]
    group = await play(cluster_server, 30.0, 6, station, "node")
    removed_at = (await cluster_server.driver.acall("remove_node", role="cpu"))["removed_at"]
    moved_at = None
    while moved_at is None and time.time() - removed_at < 45:
        actors = await cluster_server.driver.acall("actors")
        placed = [by_name(actors, station_actor(s['name'])) for s in STATIONS]
        if all(a["state"] == "ALIVE" and a["node_id"] != nodes["cpu"] for a in placed):
            moved_at = time.time()
        else:
            await asyncio.sleep(0.5)
    recs = await group.until_on_schedule(moved_at or removed_at)
    summary = summarize(recs, removed_at)
    summary.update(stations_on_removed_node=on_cpu,
                   stations_alive_elsewhere_after_s=None if moved_at is None else round(moved_at - removed_at, 2))
    cluster_server.results["remove_worker_node"] = summary
    assert moved_at is not None, "station actors did not move off the removed node"
    assert summary["unannounced_gaps"] == 0, summary
    assert all(r.on_schedule_since(moved_at) for r in recs), "every listener is back on schedule"


async def test_deploy_new_version_while_listeners_play(cluster_server):
    # through the shared port: the old replicas close it as they drain, the new one opens it when ready
    # listening ends once every listener is back on schedule; 50 s leaves a slow rollout time for it
    group = await play(cluster_server, 50.0, 6, "alpha", "dep", shared=True)
    old = {a["name"] for a in ingress_replicas(await cluster_server.driver.acall("actors"))}
    deployed_at = (await cluster_server.driver.acall(
        "deploy", config=serve_config(cluster_server.port, cluster_server.shared_port, version="v2",
                                      replicas=1)))["deployed_at"]

    async def only_the_new_replica() -> bool:
        alive = {a["name"] for a in ingress_replicas(await cluster_server.driver.acall("actors"))}
        return len(alive) == 1 and not alive & old

    await wait_until_async(only_the_new_replica, 30.0, "the old version's replicas to be gone", poll=0.5)
    recs = await group.until_on_schedule(time.time())
    summary = summarize(recs, deployed_at)
    summary["shutdown_warnings"] = sum(len(r.of_type("shutdown_warning")) for r in recs)
    cluster_server.results["deploy_new_version"] = summary
    assert summary["reconnects"] >= 1, "the rolling update moved no listener"
    assert summary["shutdown_warnings"] >= 1 and "1012" in summary["close_codes"], "replaced replicas drain"
    assert summary["unannounced_gaps"] == 0, summary
    assert all(r.on_schedule_since(deployed_at) for r in recs), "every listener is back on schedule"


async def test_drain_warns_keeps_streaming_then_closes_1012(cluster_server):
    import httpx

    group = await play(cluster_server, 12.0, 6, "beta", "drn", resume=False)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"http://127.0.0.1:{cluster_server.port}/api/admin/drain",
                            headers={"authorization": f"Bearer {TOKEN}"})
    drained_at = time.time()
    assert r.status_code == 200 and r.json()["listeners"] >= 6
    recs = await group.recordings()
    closed = []
    for rec in recs:
        warning = rec.of_type("shutdown_warning")
        assert warning and warning[0]["drain_period_sec"] == DRAIN_SEC
        assert rec.closes and rec.closes[0][1] == 1012
        closed.append(rec.closes[0][0] - drained_at)
        streamed = [a for a in rec.arrivals if a >= warning[0]["_at"]]
        assert streamed and streamed[-1] - warning[0]["_at"] >= DRAIN_SEC - 0.3, "streaming stops early"
        assert rec.unannounced_gaps() == 0 and rec.underruns(500) == 0
    cluster_server.results["drain"] = {"listeners": len(recs), "closed_after_s_max": round(max(closed), 2),
                                       "unannounced_gaps": 0, "underruns_500ms": 0}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    driver_main()
