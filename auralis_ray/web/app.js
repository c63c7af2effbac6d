// The page: binds the DOM to the two players (AuralisPlayer: the WebSocket stream through the
// AudioWorklet; HttpStreamPlayer: the phone mode's <audio> element), the station API, now playing and
// the lock screen's media controls (MediaSession), and the sleep timer.
// window.auralisPlayer and window.auralisPhonePlayer are the automation/support handles (stats() etc.),
// window.auralisListenMode() says which one listens.

import { AUTO_FORMAT, Format } from "./formats.js";
import { HttpStreamPlayer } from "./http-player.js";
import { ListenMode, chooseListenMode } from "./listen-mode.js";
import { mediaMetadataInit, nowPlayingText, parseNowPlaying } from "./now-playing.js";
import { AuralisPlayer } from "./player.js";
import { drawVisual } from "./visual.js";

const KEYS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
const MODES = ["ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian"];
const CONTROL_FIELDS = ["key", "mode", "bpm", "intensity"];
const TOKEN_STORAGE = "auralis.controlToken";
const VOLUME_STORAGE = "auralis.volume";
const MODE_STORAGE = "auralis.listenMode";
const SLEEP_FADE_SEC = 10;
const NOW_PLAYING_POLL_MS = 10000;
const REQUESTABLE_FORMATS = [AUTO_FORMAT, ...Object.values(Format)];

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

const player = new AuralisPlayer({
  format: REQUESTABLE_FORMATS.includes(query.get("format")) ? query.get("format") : AUTO_FORMAT,
  tier: query.get("tier") ?? "normal",
  tierFloor: query.get("tier_floor") ?? "normal",
  sampleRate: Number(query.get("sample_rate")) || undefined, // support/testing only
});
const phonePlayer = new HttpStreamPlayer({ audio: $("stream-audio") });
window.auralisPlayer = player;
window.auralisPhonePlayer = phonePlayer;

// ---------- listening mode ----------
const workletAvailable = window.isSecureContext && typeof AudioWorkletNode !== "undefined";
let mode = chooseListenMode({
  requested: query.get("mode"),
  saved: localStorage.getItem(MODE_STORAGE),
  mobileHint: navigator.userAgentData?.mobile,
  coarsePointer: matchMedia("(pointer: coarse)").matches,
  screenMinPx: Math.min(screen.width, screen.height),
  workletAvailable,
});
window.auralisListenMode = () => mode;
/** The player of the current mode. */
const listening = () => (mode === ListenMode.PHONE ? phonePlayer : player);

const modeToggle = $("phone-mode");
modeToggle.disabled = !workletAvailable; // without AudioWorklet only the phone mode plays
modeToggle.addEventListener("change", async () => {
  const wasPlaying = listening().wanted;
  if (wasPlaying) listening().stop();
  mode = modeToggle.checked ? ListenMode.PHONE : ListenMode.WEBSOCKET;
  localStorage.setItem(MODE_STORAGE, mode);
  renderMode();
  if (wasPlaying) await startListening();
});
function renderMode() {
  modeToggle.checked = mode === ListenMode.PHONE;
  document.body.dataset.listenMode = mode;
  renderStatus();
}

let stations = [];

// ---------- stations ----------
async function loadStations() {
  try {
    const res = await fetch("/api/stations", { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    stations = (await res.json()).stations ?? [];
  } catch (err) {
    notice(`Could not load stations: ${err.message}`);
    return;
  }
  const select = $("station");
  const wanted = query.get("station") ?? player.station;
  select.replaceChildren(...stations.map((s) => new Option(s.name, s.name)));
  const pick = stations.some((s) => s.name === wanted) ? wanted : stations[0]?.name;
  if (pick) {
    select.value = pick;
    player.station = pick;
  }
  fillControls();
}

function currentStation() {
  return stations.find((s) => s.name === $("station").value);
}

$("station").addEventListener("change", async (e) => {
  fillControls();
  showNowPlaying(null);
  fetchNowPlaying();
  player.station = phonePlayer.station = e.target.value;
  await listening().setStation(e.target.value);
});

// ---------- play / stop ----------
const playButton = $("play");
playButton.addEventListener("click", () => (listening().wanted ? stopListening() : startListening()));

async function startListening() {
  const p = listening();
  wsAnnouncesNowPlaying = false;
  try {
    await p.play($("station").value);
  } catch (err) {
    if (err.name === "AbortError") return; // a newer start or a stop took over
    p.stop();
    const hint = mode === ListenMode.WEBSOCKET && !window.isSecureContext ? " (audio worklets need https or localhost)" : "";
    notice(`Cannot start audio: ${err.message}${hint}`, true);
  }
  renderPlayButton();
}

function stopListening() {
  listening().stop();
  renderPlayButton();
}

/** The lock screen's pause: the phone mode keeps its element's source, so the lock screen keeps its controls. */
function pauseListening() {
  if (mode === ListenMode.PHONE) phonePlayer.pause();
  else player.stop();
  renderPlayButton();
}

function renderPlayButton() {
  const on = listening().wanted;
  playButton.querySelector(".label").textContent = on ? "Stop" : "Play";
  playButton.classList.toggle("playing", on);
  if (mediaSession) mediaSession.playbackState = on ? "playing" : "paused";
}

// ---------- volume ----------
const volume = $("volume");
const savedVolume = Number(localStorage.getItem(VOLUME_STORAGE));
if (localStorage.getItem(VOLUME_STORAGE) !== null && savedVolume >= 0 && savedVolume <= 100) volume.value = String(savedVolume);
player.setVolume(volume.value / 100);
phonePlayer.setVolume(volume.value / 100);
volume.addEventListener("input", () => {
  player.setVolume(volume.value / 100);
  phonePlayer.setVolume(volume.value / 100);
  localStorage.setItem(VOLUME_STORAGE, volume.value);
});

// ---------- status ----------
const CONNECTION_TEXT = {
  playing: "Playing",
  buffering: "Buffering…",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  stopped: "Stopped",
  idle: "Stopped",
  error: "Error",
};
let lastLine = "";
const shown = (value, text = String) => (value === null || value === undefined ? "–" : text(value));
function renderStatus() {
  const s = listening().stats();
  $("st-connection").textContent = s.connection;
  $("st-format").textContent = s.formatLabel;
  $("st-buffered").textContent = `${s.bufferedMs} ms`;
  $("st-tier").textContent = shown(s.tier);
  $("st-jitter").textContent = shown(s.jitterMs, (ms) => `${ms.toFixed(1)} ms`);
  $("st-underruns").textContent = shown(s.underruns);
  $("st-chunks").textContent = shown(s.chunksReceived);
  $("st-rate").textContent = shown(s.sampleRate, (hz) => `${hz} Hz`);
  $("st-reconnects").textContent = String(s.reconnects);
  let line = CONNECTION_TEXT[s.state] ?? s.state;
  if (s.state === "playing" && s.connection === "reconnecting") line = "Playing (reconnecting…)";
  if (s.state === "error" && s.lastError) line = `Error: ${s.lastError}`;
  if (line !== lastLine) {
    // Only the line changes are announced; the numbers below are not live regions.
    $("conn-line").textContent = line;
    $("conn-line").classList.toggle("error", s.state === "error");
    lastLine = line;
  }
  renderPlayButton();
}
let statusQueued = false;
function queueStatus() {
  if (statusQueued) return;
  statusQueued = true;
  setTimeout(() => {
    statusQueued = false;
    renderStatus();
  }, 200);
}
player.addEventListener("change", queueStatus);
phonePlayer.addEventListener("change", queueStatus);
player.addEventListener("event", (e) => {
  const { level, message } = e.detail;
  if (level === "warning" || level === "error") notice(message, level === "error");
});
// a notice from before the stream (re)opened (a refusal, a drop) is over once it is open again
let lastConnection = null;
player.addEventListener("change", () => {
  const connection = player.stream.connection;
  if (connection === "open" && lastConnection !== "open") notice("");
  lastConnection = connection;
});

function notice(text, isError = false) {
  const el = $("notice");
  el.textContent = text;
  el.style.color = isError ? "var(--danger)" : "";
}

// ---------- visual ----------
const canvas = $("visual");
const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
function frame() {
  const shows = !reducedMotion.matches && !document.hidden && mode === ListenMode.WEBSOCKET;
  if (shows) drawVisual(canvas, player.analyser, player.wanted);
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// ---------- now playing, and the lock screen's media controls ----------
const mediaSession = navigator.mediaSession ?? null;
let nowPlaying = null;
let wsAnnouncesNowPlaying = false; // the WebSocket stream sent now_playing since this play began
let mediaTitle = null;

function showNowPlaying(np) {
  const station = $("station").value || player.station;
  if (np?.station && np.station !== station) return; // an answer about the station before
  nowPlaying = np;
  $("np-station").textContent = station;
  $("np-text").textContent = nowPlayingText(np) || "–";
  if (!mediaSession || typeof MediaMetadata === "undefined") return;
  const init = mediaMetadataInit(station, np);
  if (init.title === mediaTitle) return;
  mediaTitle = init.title;
  mediaSession.metadata = new MediaMetadata(init);
}

async function fetchNowPlaying() {
  const station = $("station").value || player.station;
  try {
    const res = await fetch(`/api/stations/${encodeURIComponent(station)}/now`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!res.ok) return;
    const np = parseNowPlaying(await res.json());
    if (np && station === ($("station").value || player.station)) showNowPlaying(np);
  } catch {
    /* the next poll tries again */
  }
}

player.addEventListener("nowplaying", (e) => {
  wsAnnouncesNowPlaying = true;
  if (mode === ListenMode.WEBSOCKET) showNowPlaying(e.detail);
});
// The phone mode's stream carries no messages: ask the server (a hidden page only while it plays).
setInterval(() => {
  const p = listening();
  if (document.hidden && !p.wanted) return;
  if (mode === ListenMode.WEBSOCKET && p.wanted && wsAnnouncesNowPlaying) return;
  fetchNowPlaying();
}, NOW_PLAYING_POLL_MS);

if (mediaSession) {
  const handlers = { play: startListening, pause: pauseListening, stop: stopListening };
  for (const [action, handler] of Object.entries(handlers)) {
    try {
      mediaSession.setActionHandler(action, () => handler());
    } catch {
      /* an action this browser does not offer */
    }
  }
}

// ---------- station controls ----------
const form = $("controls");
$("ctl-key").replaceChildren(...KEYS.map((k) => new Option(k, k)));
$("ctl-mode").replaceChildren(...MODES.map((m) => new Option(m, m)));
$("ctl-token").value = sessionStorage.getItem(TOKEN_STORAGE) ?? "";
const intensityOut = $("ctl-intensity-out");
$("ctl-intensity").addEventListener("input", (e) => (intensityOut.value = Number(e.target.value).toFixed(2)));

function fillControls(params = currentStation()?.params) {
  if (!params) return;
  if (params.key !== undefined) form.key.value = params.key;
  if (params.mode !== undefined) form.mode.value = params.mode;
  if (params.bpm !== undefined) form.bpm.value = String(params.bpm);
  if (params.intensity !== undefined) {
    form.intensity.value = String(params.intensity);
    intensityOut.value = Number(params.intensity).toFixed(2);
  }
}

function clearErrors() {
  for (const f of CONTROL_FIELDS) {
    $(`err-${f}`).textContent = "";
    form[f].removeAttribute("aria-invalid");
  }
  form.token.removeAttribute("aria-invalid");
  setMessage("", "");
}

function setMessage(text, kind) {
  const el = $("ctl-message");
  el.textContent = text;
  el.className = `message ${kind}`;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  clearErrors();
  const name = $("station").value;
  const token = form.token.value.trim();
  sessionStorage.setItem(TOKEN_STORAGE, token);
  // Values go to the server as typed: the server validates (and its messages are shown).
  const bpm = form.bpm.value.trim();
  const body = { key: form.key.value, mode: form.mode.value, intensity: Number(form.intensity.value) };
  if (bpm !== "") body.bpm = Number(bpm);
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  $("ctl-apply").disabled = true;
  try {
    const res = await fetch(`/api/stations/${encodeURIComponent(name)}/control`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (res.ok) {
      const station = stations.find((s) => s.name === name);
      if (station && data.params) station.params = data.params;
      fillControls(data.params);
      setMessage(`Applied to ${name}.`, "ok");
    } else if (res.status === 401) {
      setMessage(data.error ? `Not authorized: ${data.error}` : "Not authorized: check the control token.", "error");
      form.token.setAttribute("aria-invalid", "true");
    } else {
      showValidationErrors(data, res.status);
    }
  } catch (err) {
    setMessage(`Request failed: ${err.message}`, "error");
  } finally {
    $("ctl-apply").disabled = false;
  }
});

function showValidationErrors(data, status) {
  const details = Array.isArray(data.detail) ? data.detail : [];
  const loose = [];
  for (const d of details) {
    if (CONTROL_FIELDS.includes(d.field)) {
      $(`err-${d.field}`).textContent = d.message;
      form[d.field].setAttribute("aria-invalid", "true");
    } else {
      loose.push(d.field ? `${d.field}: ${d.message}` : d.message);
    }
  }
  const head = data.error ?? `HTTP ${status}`;
  const fields = details.map((d) => `${d.field}: ${d.message}`).join("; ");
  setMessage(fields ? `${head} (${fields})` : head, "error");
  if (loose.length) notice(loose.join("; "), true);
}

// ---------- sleep timer ----------
let sleepDeadline = null;
let sleepTimer = null;
$("sleep").addEventListener("change", (e) => {
  const minutes = Number(e.target.value);
  clearTimeout(sleepTimer);
  sleepDeadline = null;
  if (minutes > 0) {
    sleepDeadline = Date.now() + minutes * 60000;
    sleepTimer = setTimeout(() => {
      listening().fadeOutAndStop(SLEEP_FADE_SEC);
      sleepDeadline = null;
      $("sleep").value = "0";
      renderSleep();
    }, minutes * 60000 - SLEEP_FADE_SEC * 1000);
  }
  renderSleep();
});
function renderSleep() {
  const el = $("sleep-left");
  if (!sleepDeadline) {
    el.textContent = "";
    return;
  }
  const left = Math.max(0, Math.round((sleepDeadline - Date.now()) / 1000));
  el.textContent = `Stops in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}
setInterval(renderSleep, 1000);

// ---------- go ----------
renderMode();
loadStations().then(() => {
  phonePlayer.station = player.station;
  showNowPlaying(null);
  fetchNowPlaying();
});
