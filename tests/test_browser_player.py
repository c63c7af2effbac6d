"""The web player in a real browser against the real server (Playwright + Debian's Chromium).

- 20 s of Opus over WebSocket (the default where WebCodecs decodes it, as Chromium does in a worker)
  and 20 s of binary PCM, each with 0 underruns and >= 180 chunks at the browser's own sample rate;
  a server-side disconnect mid-play resumes with no gap; the JSON fallback at a forced 48 kHz.
- The phone mode plays the station's HTTP stream through an <audio> element (its currentTime
  advances), with MediaSession metadata naming the station; a phone gets that mode by itself.
- No console errors; screenshots kept as test artifacts (test-artifacts/player.png, player-pcm.png,
  player-phone-mode.png, player-phone.png, player-controls.png), and what each play ended with
  (test-artifacts/player-opus.json, player-pcm.json, player-phone-mode.json).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from required_tools import require_tool

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PLAY_SECONDS = 20
MIN_CHUNKS = 180
MODE_STORAGE = "auralis.listenMode"  # app.js: the listener's choice on the phone mode switch
PHONE_SCREEN = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser_context():
    require_tool(CHROMIUM, "install Debian's Chromium with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    profile = tempfile.mkdtemp(prefix="auralis-chromium-")
    with sync_api.sync_playwright() as p:
        # headless comes from --headless=new in the args, so Playwright must not add its own flag.
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=False,
            args=CHROMIUM_ARGS,
            viewport={"width": 1000, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class PlayerPage:
    """One open player tab, with the console errors and WebSocket URLs it produced."""

    def __init__(self, context, url: str) -> None:
        self.page = context.new_page()
        self.console_errors: list[str] = []
        self.ws_urls: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"pageerror: {e}"))
        self.page.on("websocket", lambda ws: self.ws_urls.append(ws.url))
        self.page.goto(url)
        self.page.wait_for_function("() => window.auralisPlayer !== undefined")

    def stats(self) -> dict:
        return self.page.evaluate("() => window.auralisPlayer.stats()")

    def play(self) -> dict:
        self.page.get_by_role("button", name="Play").click()
        self.page.get_by_role("button", name="Stop").wait_for(timeout=5000)
        self.page.wait_for_function("() => window.auralisPlayer.stats().state === 'playing'", timeout=15000)
        return self.stats()

    def stop(self) -> None:
        self.page.get_by_role("button", name="Stop").click()
        self.page.get_by_role("button", name="Play").wait_for(timeout=5000)


@pytest.fixture(scope="module")
def player(browser_context, auralis_server):
    p = PlayerPage(browser_context, auralis_server.http_url + "/")
    yield p
    p.page.close()


def _post(url: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def keep(name: str, record: dict) -> None:
    """A record of what a test saw, kept beside its screenshot."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(json.dumps(record, indent=2) + "\n")


def play_20_seconds(player: PlayerPage, screenshot: str) -> tuple[dict, dict]:
    """Play for PLAY_SECONDS at the browser's own rate, sampling the state every second; returns the
    stats at the start and at the end."""
    page = player.page
    assert player.stats()["state"] in ("idle", "stopped")
    start = player.play()
    native_rate = page.evaluate(
        "async () => { const c = new AudioContext(); const r = c.sampleRate; await c.close(); return r; }"
    )
    assert start["sampleRate"] == native_rate, "the context must run at the browser's own rate"

    states = []
    t_end = time.monotonic() + PLAY_SECONDS
    while time.monotonic() < t_end:
        time.sleep(1)  # the behaviour under test: 20 s of play, its state sampled every second
        states.append(player.stats()["state"])
    end = player.stats()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)

    received = end["chunksReceived"] - start["chunksReceived"]
    assert end["underruns"] == 0, end
    assert received >= MIN_CHUNKS, f"{received} chunks in {PLAY_SECONDS} s: {end}"
    assert set(states) == {"playing"}, states
    assert end["gaps"] == 0, end
    assert end["bufferedMs"] > 0, end
    assert end["tier"] in ("minimal", "normal", "stable", "defensive")
    # the status panel shows live numbers, not the placeholders
    assert page.locator("#st-chunks").inner_text() != "0"
    assert page.locator("#st-rate").inner_text() == f"{native_rate} Hz"
    assert page.locator("#st-format").inner_text() == end["formatLabel"]
    assert not player.console_errors, player.console_errors
    return start, end


def test_plays_20_seconds_of_opus_without_underruns(player):
    """Opus is the default: the worker's AudioDecoder decodes it at 48 kHz, the worklet resamples."""
    assert player.page.evaluate("() => window.auralisListenMode()") == "websocket"
    start, end = play_20_seconds(player, "player.png")
    keep("player-opus.json", {"start": start, "end": end})
    assert "format=opus" in player.ws_urls[-1], player.ws_urls
    assert end["format"] == "opus", end
    assert end["codec"]["name"] == "opus" and end["codec"]["sample_rate"] == 48000, end
    assert re.fullmatch(r"Opus \d+ kbit/s", end["formatLabel"]), end
    # now playing: the station, and what it plays in words
    assert player.page.locator("#np-station").inner_text() == "default"
    player.page.wait_for_function("() => document.getElementById('np-text').textContent.includes('bpm')", timeout=10000)


def test_plays_20_seconds_of_pcm_without_underruns(browser_context, auralis_server):
    p = PlayerPage(browser_context, auralis_server.http_url + "/?format=binary")
    try:
        start, end = play_20_seconds(p, "player-pcm.png")
        keep("player-pcm.json", {"start": start, "end": end})
        assert "format=binary" in p.ws_urls[-1], p.ws_urls
        assert end["format"] == "binary" and end["formatLabel"] == "PCM 1411 kbit/s", end
        p.stop()
    finally:
        p.page.close()


def test_server_side_disconnect_resumes_without_gap(player, auralis_server):
    s = player.stats()
    if s["state"] != "playing":
        s = player.play()
    # a buffer to ride out the reconnect on
    player.page.wait_for_function(
        "() => { const s = window.auralisPlayer.stats(); return s.state === 'playing' && s.bufferedMs >= s.targetMs / 2; }",
        timeout=10000)
    before = player.stats()
    assert before["state"] == "playing", before
    sockets_before = len(player.ws_urls)

    status, body = _post(
        f"{auralis_server.http_url}/api/debug/drop/{before['clientId']}", auralis_server.control_token
    )
    assert status == 200, (status, body)
    player.page.wait_for_function(
        f"() => window.auralisPlayer.stats().reconnects > {before['reconnects']}", timeout=10000
    )
    # 3 s of stream past the drop: the buffer held before it has played out by then
    player.page.wait_for_function(
        f"() => window.auralisPlayer.stats().lastChunkId >= {before['lastChunkId'] + 30}", timeout=10000
    )
    after = player.stats()

    assert after["state"] == "playing", after
    assert after["underruns"] == before["underruns"], (before, after)
    assert after["gaps"] == 0, after  # chunk ids stayed consecutive across the reconnect
    assert after["lastChunkId"] >= before["lastChunkId"] + 30, (before, after)
    assert len(player.ws_urls) == sockets_before + 1, player.ws_urls
    assert "resume_from=" in player.ws_urls[-1], player.ws_urls[-1]
    assert not player.console_errors, player.console_errors


def test_station_controls_show_server_validation(player, auralis_server):
    page = player.page
    page.get_by_text("Station controls").click()
    bpm = page.get_by_label("BPM")
    original_bpm = bpm.input_value()

    page.get_by_label("Control token").fill("wrong-token")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("() => document.getElementById('ctl-message').textContent.includes('Not authorized')")

    page.get_by_label("Control token").fill(auralis_server.control_token)
    bpm.fill("500")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("() => document.getElementById('err-bpm').textContent.length > 0")
    assert bpm.get_attribute("aria-invalid") == "true"
    assert "bpm" in page.locator("#ctl-message").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "player-controls.png"), full_page=True)

    # the current values applied unchanged: accepted, and the stream is unaffected either way
    bpm.fill(original_bpm)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("() => document.getElementById('ctl-message').textContent.startsWith('Applied')")
    assert page.locator("#err-bpm").inner_text() == ""
    s = player.stats()
    assert s["state"] == "playing" and s["underruns"] == 0, s
    # Chromium itself logs every 4xx answer as a console error; the two we provoked are expected.
    expected = ("status of 401", "status of 422")
    unexpected = [e for e in player.console_errors if not any(x in e for x in expected)]
    assert not unexpected, unexpected


def test_a_stop_right_after_play_leaves_the_worker_stopped(player):
    """Play, then Stop before the audio graph is ready (a double click): the stream worker's last
    word is stop, so nothing plays while the page says stopped."""
    sent = player.page.evaluate("""async () => {
        const p = window.auralisPlayer;
        if (!p.worker) await p.play();
        p.stop();
        const sent = [];
        const post = p.worker.postMessage.bind(p.worker);
        p.worker.postMessage = (message, transfer) => { sent.push(message.cmd); return post(message, transfer); };
        const playing = p.play();
        p.stop();
        await playing;
        p.worker.postMessage = post;
        return sent;
    }""")
    assert sent == ["stop"], sent
    assert player.stats()["state"] in ("stopped", "idle")


def test_json_frames_resampled_to_48_khz_without_underruns(browser_context, auralis_server):
    """Headless Chromium often runs at 44.1 kHz, where the resampler is an identity: force 48 kHz,
    and take the JSON (base64) fallback path at the same time."""
    p = PlayerPage(browser_context, auralis_server.http_url + "/?sample_rate=48000&format=json")
    try:
        start = p.play()
        assert start["sampleRate"] == 48000, start
        # 8 s of audio through the resampler
        p.page.wait_for_function(
            f"() => window.auralisPlayer.stats().chunksReceived >= {start['chunksReceived'] + 80}", timeout=15000
        )
        end = p.stats()
        assert end["state"] == "playing", end
        assert end["underruns"] == 0, end
        assert 500 < end["bufferedMs"] <= 1200, end
        assert end["format"] == "json" and "format=json" in p.ws_urls[-1], (end, p.ws_urls)
        assert not p.console_errors, p.console_errors
        p.stop()
        assert p.stats()["state"] == "stopped"
    finally:
        p.page.close()


def test_phone_mode_plays_the_http_stream_with_media_session(browser_context, auralis_server):
    """The switch turns the phone mode on: an <audio> element plays /listen/{station}.opus, the lock
    screen's metadata names the station and what it plays, and no WebSocket is opened."""
    p = PlayerPage(browser_context, auralis_server.http_url + "/")
    page = p.page
    try:
        assert page.evaluate("() => window.auralisListenMode()") == "websocket"
        page.get_by_role("switch", name="Phone mode").check()
        assert page.evaluate("() => window.auralisListenMode()") == "phone"
        page.get_by_role("button", name="Play").click()
        page.get_by_role("button", name="Stop").wait_for(timeout=5000)
        page.wait_for_function("() => window.auralisPhonePlayer.stats().state === 'playing'", timeout=15000)
        first = page.evaluate("() => document.getElementById('stream-audio').currentTime")
        page.wait_for_function(
            f"() => document.getElementById('stream-audio').currentTime >= {first} + 3", timeout=15000)
        stats = page.evaluate("() => window.auralisPhonePlayer.stats()")
        assert stats["state"] == "playing", stats
        assert stats["url"] == f"{auralis_server.http_url}/listen/default.opus", stats
        assert stats["reconnects"] == 0, stats
        # the format, with the bitrate the stream's icy-br header gives once it plays
        page.wait_for_function(
            "() => /^Ogg Opus \\d+ kbit\\/s \\(HTTP\\)$/.test(document.getElementById('st-format').textContent)",
            timeout=10000)

        page.wait_for_function("() => document.getElementById('np-text').textContent.includes('bpm')", timeout=15000)
        session = page.evaluate("""() => ({
            title: navigator.mediaSession.metadata?.title,
            artist: navigator.mediaSession.metadata?.artist,
            state: navigator.mediaSession.playbackState,
        })""")
        assert session["title"].startswith("default · ") and "bpm" in session["title"], session
        assert session["artist"] == "Auralis", session
        assert session["state"] == "playing", session
        assert not p.ws_urls, p.ws_urls
        keep("player-phone-mode.json", {"first_current_time": first, "stats": stats, "media_session": session})
        page.screenshot(path=str(ARTIFACTS / "player-phone-mode.png"), full_page=True)

        p.stop()
        assert page.evaluate("() => document.getElementById('stream-audio').paused")
        assert page.evaluate("() => navigator.mediaSession.playbackState") == "paused"

        # where the element does not play Ogg/Opus the mode plays the MP3 stream
        page.evaluate("() => { window.auralisPhonePlayer.kind = 'mp3'; }")
        page.get_by_role("button", name="Play").click()
        page.wait_for_function("() => document.getElementById('stream-audio').currentTime >= 2", timeout=15000)
        assert page.evaluate("() => window.auralisPhonePlayer.stats().url").endswith("/listen/default.mp3")
        p.stop()
        assert not p.console_errors, p.console_errors
    finally:
        page.evaluate(f"() => localStorage.removeItem('{MODE_STORAGE}')")  # the next pages choose by the device
        page.close()


def test_phone_sized_layout(browser_context, auralis_server):
    """A phone (touch, a small screen) gets the phone mode by itself, and the page fits its screen."""
    page = browser_context.new_page()
    page.set_viewport_size(PHONE_SCREEN)  # Playwright gives the screen the viewport's size
    cdp = browser_context.new_cdp_session(page)
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})  # a coarse pointer
    try:
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.goto(auralis_server.http_url + "/")
        page.wait_for_function("() => document.querySelectorAll('#station option').length > 0")
        assert page.evaluate("() => window.auralisListenMode()") == "phone"
        assert page.get_by_role("switch", name="Phone mode").is_checked()
        # nothing wider than the screen
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"page is {overflow}px wider than the phone screen"
        play = page.get_by_role("button", name="Play")
        box = play.bounding_box()
        assert box and box["height"] >= 40 and box["width"] >= 200, box
        ARTIFACTS.mkdir(exist_ok=True)
        page.get_by_text("Station controls").click()
        page.screenshot(path=str(ARTIFACTS / "player-phone.png"))  # what the phone shows first
        assert not errors, errors
    finally:
        cdp.detach()
        page.close()
