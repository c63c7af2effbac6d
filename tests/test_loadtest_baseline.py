"""The load generator against the bare baseline: JSON, binary and opus WebSocket listeners, then MP3 and
Ogg Opus HTTP stream listeners, ~3 s each; and the baseline's opus frames are the project's encoder's."""

import asyncio
import os

import pytest
from websockets.sync.client import connect

from auralis_ray.stream.codecs import OpusEncoder, decode_opus_frame
from auralis_ray.tools.loadtest.baseline import BaselineServer, baseline_subprocess
from auralis_ray.tools.loadtest.client import run_loadtest_async
from auralis_ray.tools.loadtest.config import LoadTestConfig
from auralis_ray.tools.loadtest.frames import AudioFrame, decode_opus
from listeners import decode
from waiting import wait_until

pytestmark = pytest.mark.realtime

FULL_BURST = 10  # chunks: one normal tier target
LISTENERS = 20
SETTLE_S = 0.5
SECONDS = 2.5


@pytest.fixture(scope="module")
def baseline():
    with baseline_subprocess() as (url, pid):
        wait_for_full_burst(url)
        yield url, pid


@pytest.fixture(scope="module")
def http_baseline():
    with baseline_subprocess(http=True) as (url, pid):
        yield url, pid


def wait_for_full_burst(url: str) -> None:
    """Until the baseline has published FULL_BURST chunks, so every listener's burst is a full tier target."""
    with connect(f"{url}/ws/audio/probe?format=binary", max_size=2**22) as ws:
        def heard_last_of_burst() -> bool:
            kind, _, chunk_id, _, _ = decode(ws.recv(timeout=5))
            return kind == "audio" and chunk_id >= FULL_BURST - 1

        wait_until(heard_last_of_burst, 10.0, f"the baseline to publish chunk {FULL_BURST - 1}", poll=0)


def test_baseline_sends_the_project_encoders_opus_packets_once_per_chunk():
    server = BaselineServer()
    encoder = OpusEncoder()
    for k in range(6):
        chunk = server.build(k, 100.0 + k * 0.1)
        frame = decode_opus_frame(chunk.frame("opus"))
        assert (frame.chunk_id, frame.timestamp) == (k, 100.0 + k * 0.1)
        assert frame.packets == encoder.encode(k, server.pcm).packets  # the same bytes as a station's encoder
        assert decode_opus(chunk.frame("opus")) == AudioFrame(k, 100.0 + k * 0.1)
        assert chunk.frame("binary") == chunk.binary and chunk.mp3 and chunk.ogg_pages
    assert len(frame.packets) == 5  # 20 ms packets: five per 100 ms chunk
    assert server.ogg_header.startswith(b"OggS") and b"OpusHead" in server.ogg_header


@pytest.mark.timeout(60)
async def test_generator_against_baseline_has_no_gaps_and_expected_chunk_counts(baseline):
    url, pid = baseline
    configs = [
        LoadTestConfig(url=url, listeners=LISTENERS, seconds=SECONDS, format=fmt, settle_s=SETTLE_S,
                       idle_s=0.0, server_pids=(pid,), label=fmt)
        for fmt in ("json", "binary", "opus")
    ]
    reports = await asyncio.gather(*(run_loadtest_async(c) for c in configs))
    for r in reports:
        assert r.listeners_connected == LISTENERS and r.listeners_failed == 0, r.failure_reasons
        assert r.listeners_closed_early == 0
        assert r.bad_frames == 0
        assert r.unannounced_gaps == 0 and r.out_of_order == 0 and r.announced_skips == 0
        assert r.underruns == 0
        # each listener: a 10-chunk burst, then one chunk per 100 ms until the run ends (ramp 0.1 s +
        # settle + window), fewer by a chunk per 100 ms that its first audio took and per 100 ms that
        # its chunks were read late (the last ones are not read before the end); allow ±2 chunks per
        # listener for timing edges
        per_listener = FULL_BURST + 10 * (0.1 + SETTLE_S + SECONDS)
        joined_late, read_late = r.first_audio_ms.max / 100, r.read_lateness_ms.max / 100
        fewest = LISTENERS * (per_listener - joined_late - read_late - 2)
        most = LISTENERS * (per_listener + 2)
        assert fewest <= r.chunks_received <= most, (r.chunks_received, r.first_audio_ms, r.read_lateness_ms)
        assert abs(r.live_chunks_in_window - LISTENERS * SECONDS * 10) <= 1.5 * LISTENERS
        assert r.lateness_ms.max is not None and r.lateness_ms.p50 < 50
        # arrival (kernel stamp) can only precede the generator's read of the same chunk
        assert r.read_lateness_ms.count == r.lateness_ms.count
        assert r.lateness_ms.p50 <= r.read_lateness_ms.p50 and r.lateness_ms.max <= r.read_lateness_ms.max
        assert r.first_audio_ms.count == LISTENERS and r.first_audio_ms.max < 2000
        # first audio by its arrival, the read beside it; the request went out before either
        assert r.first_audio_read_ms.count == LISTENERS and r.first_audio_ms.p50 <= r.first_audio_read_ms.p50
        assert r.request_sent_ms.count == LISTENERS and r.request_sent_ms.p50 <= r.first_audio_ms.p50
        assert r.server.pids == [pid] and r.server.cpu_percent is not None
        assert r.stalls == 0 and r.listeners_behind_real_time == 0
        assert r.to_json()
    by_format = {r.format: r.bytes_per_s_per_listener.p50 for r in reports}
    # 17,656 B binary frames ten times a second; 128 kbit/s of Opus packets, about 16 kB/s
    assert by_format["binary"] == pytest.approx(176_560, rel=0.06)
    assert 14_000 < by_format["opus"] < 17_500 and by_format["binary"] > 10 * by_format["opus"]


def test_the_baseline_runs_in_a_session_of_its_own_as_a_server_under_test_does(baseline):
    _, pid = baseline
    assert os.getsid(pid) == pid != os.getsid(0)


@pytest.mark.timeout(60)
async def test_http_listeners_against_the_http_baseline(http_baseline):
    url, pid = http_baseline
    configs = [
        LoadTestConfig(url=url, listeners=LISTENERS, seconds=SECONDS, format=fmt, settle_s=SETTLE_S,
                       idle_s=0.5, server_pids=(pid,), label=fmt)  # an idle figure: the marginal CPU
        for fmt in ("http-mp3", "http-opus")
    ]
    reports = await asyncio.gather(*(run_loadtest_async(c) for c in configs))
    for r in reports:
        assert r.listeners_connected == LISTENERS and r.listeners_failed == 0, r.failure_reasons
        assert r.listeners_closed_early == 0 and r.bad_frames == 0
        assert r.stalls == 0 and r.underruns == 0 and r.listeners_behind_real_time == 0
        assert 0.9 < r.realtime_ratio_min <= r.realtime_ratio_p50 < 1.15
        assert 14_000 < r.bytes_per_s_per_listener.p50 < 18_000, r.format
        assert r.first_byte_ms.count == LISTENERS and r.first_audio_ms.max < 2000
        assert r.request_sent_ms.count == LISTENERS and r.request_sent_ms.p50 <= r.first_byte_ms.p50
        assert r.server.pids == [pid] and r.server_cpu_marginal_us_per_listener_per_100ms is not None
        assert r.stream_url == f"{url}/listen/default.{r.format.removeprefix('http-')}"
        assert r.to_json()
