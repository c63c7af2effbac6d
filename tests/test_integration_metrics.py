"""Every Auralis metric reaches Ray's Prometheus export with measured, moving values."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request

import pytest
import websockets

from auralis_ray.tools.export_probe import expected_series, parse_exposition
from waiting import wait_until_async

pytestmark = pytest.mark.integration

_VALUE_LINE = "{name}"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def totals(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _listener_with_reports(url: str, seconds: float) -> None:
    async with websockets.connect(url, max_size=2**22) as ws:
        deadline = time.time() + seconds
        await ws.send("not json")  # counted as a websocket error of type invalid_message
        reports = 0
        while time.time() < deadline:
            try:
                await asyncio.wait_for(ws.recv(), 1)
            except asyncio.TimeoutError:
                pass
            if reports < int((seconds - (deadline - time.time()))):
                reports += 1
                await ws.send(json.dumps({"type": "client_report", "buffered_ms": 800, "underruns": reports,
                                          "played_chunks": 10 * reports, "timestamp": time.time()}))


async def test_each_seed_metric_is_exported_with_live_values(auralis_server):
    port = auralis_server.metrics_port
    wanted = expected_series()
    listeners = [_listener_with_reports(auralis_server.audio_url(f"m{i}"), 14.0) for i in range(3)]
    task = asyncio.gather(*listeners)
    moving = ("ray_synthesis_latency_seconds_count", "ray_chunk_delivery_jitter_ms_count",
              "ray_chunk_encoding_duration_seconds_count")
    scrapes: list[str] = []
    complete: list[str] = []  # the scrapes with every wanted series

    async def exported_and_moving() -> bool:
        text = await asyncio.to_thread(scrape, port)
        scrapes.append(text)
        if wanted <= set(parse_exposition(text)):
            complete.append(text)
        return (len(complete) >= 2 and all(totals(complete[-1], name) > totals(complete[0], name) for name in moving)
                and totals(complete[-1], "ray_buffer_underruns_total") >= 3
                and totals(complete[-1], "ray_websocket_send_errors_total") >= 3)

    def state() -> str:
        missing = sorted(wanted - set(parse_exposition(scrapes[-1]))) if scrapes else "no scrape"
        return f"every series exported and moving; not exported: {missing}; complete scrapes: {len(complete)}"

    # each process exports on its own period: scrape until every series is there and has moved
    await wait_until_async(exported_and_moving, 60.0, state, poll=2.0)
    task.cancel()  # the listeners have done what the export shows
    with contextlib.suppress(asyncio.CancelledError):
        await task
    first, text = complete[0], complete[-1]
    # measured, not constant: counts grow between scrapes, values are plausible
    for name in moving:
        assert totals(text, name) > totals(first, name) > 0, name
    assert totals(text, "ray_buffer_underruns_total") >= 3
    assert totals(text, "ray_websocket_send_errors_total") >= 3
    assert totals(text, "ray_memory_usage_mb") > 50
    assert totals(text, "ray_phrase_generation_rate_hz") > 0
    mean_latency = totals(text, "ray_synthesis_latency_seconds_sum") / totals(text, "ray_synthesis_latency_seconds_count")
    assert 0.0001 < mean_latency < 1.0
