// The page: binds the DOM to AuralisPlayer, the station API and the sleep timer.
// window.auralisPlayer is the automation/support handle (stats() etc.).

import { AuralisPlayer } from "./player.js";
import { drawVisual } from "./visual.js";

const KEYS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
const MODES = ["ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian"];
const CONTROL_FIELDS = ["key", "mode", "bpm", "intensity"];
const TOKEN_STORAGE = "auralis.controlToken";
const VOLUME_STORAGE = "auralis.volume";
const SLEEP_FADE_SEC = 10;

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

const player = new AuralisPlayer({
  format: query.get("format") === "json" ? "json" : "binary",
  tier: query.get("tier") ?? "normal",
  tierFloor: query.get("tier_floor") ?? "normal",
  sampleRate: Number(query.get("sample_rate")) || undefined, // support/testing only
});
window.auralisPlayer = player;

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
  await player.setStation(e.target.value);
});

// ---------- play / stop ----------
const playButton = $("play");
playButton.addEventListener("click", async () => {
  if (player.wanted) {
    player.stop();
  } else {
    try {
      await player.play($("station").value);
    } catch (err) {
      player.stop();
      const hint = window.isSecureContext ? "" : " (audio worklets need https or localhost)";
      notice(`Cannot start audio: ${err.message}${hint}`, true);
    }
  }
  renderPlayButton();
});

function renderPlayButton() {
  const on = player.wanted;
  playButton.querySelector(".label").textContent = on ? "Stop" : "Play";
  playButton.classList.toggle("playing", on);
}

// ---------- volume ----------
const volume = $("volume");
const savedVolume = Number(localStorage.getItem(VOLUME_STORAGE));
if (localStorage.getItem(VOLUME_STORAGE) !== null && savedVolume >= 0 && savedVolume <= 100) volume.value = String(savedVolume);
player.setVolume(volume.value / 100);
volume.addEventListener("input", () => {
  player.setVolume(volume.value / 100);
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
function renderStatus() {
  const s = player.stats();
  $("st-connection").textContent = s.connection;
  $("st-buffered").textContent = String(s.bufferedMs);
  $("st-tier").textContent = s.tier;
  $("st-jitter").textContent = s.jitterMs.toFixed(1);
  $("st-underruns").textContent = String(s.underruns);
  $("st-chunks").textContent = String(s.chunksReceived);
  $("st-rate").textContent = s.sampleRate ? `${s.sampleRate} Hz` : "–";
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
player.addEventListener("change", () => {
  if (statusQueued) return;
  statusQueued = true;
  setTimeout(() => {
    statusQueued = false;
    renderStatus();
  }, 200);
});
player.addEventListener("event", (e) => {
  const { level, message } = e.detail;
  if (level === "warning" || level === "error") notice(message, level === "error");
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
  if (!reducedMotion.matches && !document.hidden) drawVisual(canvas, player.analyser, player.wanted);
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

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
      player.fadeOutAndStop(SLEEP_FADE_SEC);
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
renderStatus();
loadStations();
