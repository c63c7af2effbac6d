"""Every seed metric reaches Ray's Prometheus export with measured, moving values."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
import websockets

from auralis_ray.tools.export_probe import expected_series, parse_exposition

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
    first = None
    deadline = time.time() + 60
    while time.time() < deadline:  # each process exports on its own period: wait until all have moved
        await asyncio.sleep(2)
        text = await asyncio.to_thread(scrape, port)
        if wanted <= set(parse_exposition(text)):
            if first is None:
                first = text
            elif all(totals(text, name) > totals(first, name) for name in moving):
                break
    await task
    missing = wanted - set(parse_exposition(text))
    assert not missing, f"not exported: {sorted(missing)}"
    # measured, not constant: counts grow between scrapes, values are plausible
    for name in moving:
        assert totals(text, name) > totals(first, name) > 0, name
    assert totals(text, "ray_buffer_underruns_total") >= 3
    assert totals(text, "ray_websocket_send_errors_total") >= 3
    assert totals(text, "ray_memory_usage_mb") > 50
    assert totals(text, "ray_phrase_generation_rate_hz") > 0
    mean_latency = totals(text, "ray_synthesis_latency_seconds_sum") / totals(text, "ray_synthesis_latency_seconds_count")
    assert 0.0001 < mean_latency < 1.0
