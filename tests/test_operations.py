"""What an operator watches, on a real `make run`: the metrics export from the first second, Debian's
Prometheus started by `make monitor` (targets, rules, a firing condition) and the Ray dashboard in
Chromium with Ray's token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from auralis_ray.monitor.metrics import METRICS
from auralis_ray.serve.local import RAY_ENV
from auralis_ray.tools.export_probe import parse_exposition
from make_run import REPO, MakeRun, service_port, small_serve_config
from required_tools import require_tool
from waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.operations]

STATIONS = 2


def scrape(port: int) -> dict[str, list[dict]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return parse_exposition(answer.read().decode())


def exported_names(series: dict) -> set[str]:
    """Our metric names (without Ray's prefix and the histogram/counter suffixes) in a scrape."""
    found = set()
    for spec in METRICS:
        suffixes = ("_bucket", "_count", "_sum") if spec.kind == "histogram" else ("",)
        if any(spec.exported(suffix.lstrip("_")) in series for suffix in suffixes):
            found.add(spec.name)
    return found


# how long Ray takes at most to carry a value recorded in a process to its metrics export
REPORT_INTERVAL_S = int(RAY_ENV["RAY_metrics_report_interval_ms"]) / 1000


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """One `make run`, and the first scrape of its metrics export once a value recorded when /readyz
    turned 200 can be there (one report interval; Prometheus scrapes every 10 s)."""
    directory = tmp_path_factory.mktemp("operations")
    run = MakeRun(directory / "build", small_serve_config(directory, STATIONS))
    run.start()
    try:
        run.wait_ready()
        time.sleep(REPORT_INTERVAL_S)  # Ray's report interval is the event: it has no signal to wait on
        run.first_scrape = scrape(run.metrics_port)
        yield run
    finally:
        if run.process.poll() is None:
            run.signal(signal.SIGTERM)
            run.wait_exit(60)


def test_all_eleven_metrics_are_in_the_first_scrape_after_readyz(system):
    assert exported_names(system.first_scrape) == {spec.name for spec in METRICS}
    stations = {labels.get("station") for labels in system.first_scrape["ray_buffer_underruns_total"]}
    assert len(stations) == STATIONS


@pytest.fixture(scope="module")
def prometheus(system):
    """`make monitor` on the test system, on a free port."""
    require_tool("prometheus", "apt-get install prometheus (Debian's package)")
    port = service_port()
    env = {**system.environment(), "PROMETHEUS_PORT": str(port)}
    log = system.state_dir / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(["make", "--no-print-directory", "monitor"], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api/v1"

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    wait_until(up, 60, lambda: f"Prometheus to start:\n{log.read_text()[-2000:]}", poll=0.25)
    yield api
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def ask(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def query(api: str, expression: str) -> list:
    return ask(f"{api}/query?query={urllib.parse.quote(expression)}")["result"]


def test_prometheus_scrapes_the_system_and_loads_the_alert_rules(system, prometheus):
    def node_export_up():
        return [t for t in ask(f"{prometheus}/targets")["activeTargets"]
                if t["health"] == "up" and t["scrapeUrl"].endswith(f":{system.metrics_port}/metrics")]

    wait_until(node_export_up, 60, lambda: f"Prometheus to scrape the node's export: {ask(f'{prometheus}/targets')}")

    def evaluated_rules():  # a rule's health is "unknown" until its group's first evaluation
        rules = [rule for group in ask(f"{prometheus}/rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = wait_until(evaluated_rules, 60, "Prometheus to evaluate every alert rule")
    assert all(rule["health"] == "ok" for rule in rules), rules
    assert {"BufferUnderruns", "PhraseGenerationStalled"} <= {rule["name"] for rule in rules}


def test_prometheus_counts_the_listeners_and_an_underrun_alert_goes_pending(system, prometheus):
    import websockets

    listeners = 3

    async def scenario():
        sockets = [await websockets.connect(f"ws://127.0.0.1:{system.port}/ws/audio/prom{i}?format=binary",
                                            max_size=None) for i in range(listeners)]
        readers = []

        async def keep_reading(socket):  # a player keeps taking its audio, or the server drops it as stalled
            async for _ in socket:
                pass

        try:
            for socket in sockets:  # each hears its connection_established
                while json.loads(await socket.recv())["type"] != "connection_established":
                    pass
            readers.extend(asyncio.create_task(keep_reading(socket)) for socket in sockets)

            def counted():
                result = query(prometheus, 'sum(ray_active_websocket_connections{component="ingress"})')
                return result and float(result[0]["value"][1]) == listeners

            await asyncio.to_thread(wait_until, counted, 90, f"Prometheus to count {listeners} listeners", 1.0)
            # a stalled player: its reports say it ran dry again and again
            for played in range(1, 31):
                await sockets[0].send(json.dumps({"type": "client_report", "buffered_ms": 0, "underruns": played * 10,
                                                  "played_chunks": played, "timestamp": time.time()}))
                await asyncio.sleep(0.5)  # a player's report interval: the reports are the stimulus

            def pending():
                return [a for a in ask(f"{prometheus}/alerts")["alerts"]
                        if a["labels"]["alertname"] == "BufferUnderruns" and a["state"] in ("pending", "firing")]

            return await asyncio.to_thread(wait_until, pending, 90, "the BufferUnderruns alert to go pending", 1.0)
        finally:
            for socket in sockets:
                await socket.close()
            await asyncio.gather(*readers, return_exceptions=True)

    alerts = asyncio.run(scenario())
    assert alerts[0]["labels"]["station"] == "default"


def test_the_ray_dashboard_shows_the_application_and_its_actors(system):
    chromium = require_tool("/usr/bin/chromium", "install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    token = (system.state_dir / "ray_auth_token").read_text().strip()
    dashboard = f"http://127.0.0.1:{system.dashboard_port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{dashboard}/#/serve")
            # as a newcomer does: the dashboard asks for the token; paste the one `make run` names
            page.get_by_text("Authentication Token Required").wait_for(timeout=30_000)
            page.get_by_role("textbox", name="Authentication Token").fill(token)
            page.get_by_role("button", name="Submit").click()
            page.get_by_text("auralis", exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("RUNNING").first.wait_for(timeout=60_000)
            page.get_by_text("AuralisIngress").first.wait_for(timeout=60_000)
            (REPO / "test-artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "test-artifacts" / "dashboard-serve.png"))
            # the state API answers the page's own session (the token's cookie)
            answer = page.request.get(f"{dashboard}/api/v0/actors?limit=1000&detail=1")
            assert answer.ok, answer.text()
            actors = answer.json()["data"]["result"]["result"]
        finally:
            browser.close()
    ours = {actor["class_name"] for actor in actors if actor.get("ray_namespace") == "auralis"
            and actor["state"] == "ALIVE"}
    assert {"SynthesisActor", "StationActor", "ListenerRegistryActor"} <= ours, ours
