// Dedicated module worker: owns the WebSocket. It connects, decodes binary or JSON audio off the
// main thread, hands planar float chunks straight to the AudioWorklet over a MessagePort
// (transferred, not copied), measures arrival jitter, runs the tier policy, sends client_report /
// buffer_control / ping, and reconnects with full-jitter backoff and resume_from.
// The main thread only receives status snapshots and events.

import { Backoff } from "./backoff.js";
import { JitterTracker } from "./jitter.js";
import {
  CHUNK_MS,
  FRAMES_PER_CHUNK,
  SUBPROTOCOL,
  TIERS,
  buildAudioUrl,
  bufferControl,
  clientReport,
  closeIsFinal,
  int16ToPlanar,
  parseBinaryFrame,
  parseJsonAudio,
  ping,
} from "./protocol.js";
import { TierPolicy } from "./tier.js";

const REPORT_INTERVAL_MS = 2000;
const POLICY_INTERVAL_MS = 1000;
const PING_INTERVAL_MS = 15000;
const STATUS_INTERVAL_MS = 250;
const STALL_TIMEOUT_MS = 4000; // open socket but no audio: treat as dead
const HEALTHY_AFTER_MS = 5000; // a connection up this long resets the backoff
const BINARY_FAILURES_BEFORE_JSON = 2;

const S = {
  worklet: null, // MessagePort to the AudioWorklet
  config: null, // {wsBase, clientId, station, tier, format, tierFloor}
  ws: null,
  wanted: false, // the listener wants audio
  connection: "closed", // closed | connecting | open | reconnecting | failed
  lastChunkId: null,
  chunksReceived: 0,
  gaps: 0, // chunk ids skipped (only after a server BUFFER_OVERRUN)
  duplicates: 0,
  reconnects: 0,
  dropped: false, // the last connection ended without us asking
  openedAt: 0,
  lastAudioAt: 0,
  gotAudioThisConnection: false,
  binaryFailures: 0,
  tier: "normal",
  format: "binary",
  rttMs: null,
  serverVersion: null,
  lastError: null,
  playout: { state: "idle", bufferedMs: 0, underruns: 0, playedFrames: 0 },
  backoff: new Backoff({ baseMs: 250, capMs: 10000 }),
  jitter: new JitterTracker({ chunkMs: CHUNK_MS }),
  policy: null,
  reconnectTimer: null,
  timers: [],
};

const now = () => performance.timeOrigin + performance.now();

self.onmessage = (e) => {
  const msg = e.data;
  switch (msg.cmd) {
    case "init":
      S.worklet = e.ports[0];
      S.worklet.onmessage = (ev) => {
        if (ev.data.type === "playout") S.playout = ev.data;
      };
      break;
    case "start":
      start(msg.config);
      break;
    case "stop":
      stop();
      break;
    case "tier":
      requestTier(msg.tier);
      break;
  }
};

function start(config) {
  S.config = config;
  S.format = config.format || "binary";
  S.policy = new TierPolicy({ floor: config.tierFloor || "normal" });
  S.tier = config.tier || "normal";
  S.wanted = true;
  S.worklet.postMessage({ type: "flush" });
  S.worklet.postMessage({ type: "target", ms: TIERS[S.tier] });
  S.worklet.postMessage({ type: "start" });
  S.lastChunkId = null; // a fresh start (or another station) listens from the live edge
  S.backoff.reset();
  closeSocket(1000, "restart");
  startTimers();
  connect(false);
}

function stop() {
  S.wanted = false;
  clearTimeout(S.reconnectTimer);
  stopTimers();
  closeSocket(1000, "stop");
  S.connection = "closed";
  S.worklet.postMessage({ type: "stop" });
  postStatus();
}

function closeSocket(code, reason) {
  const ws = S.ws;
  S.ws = null;
  if (!ws) return;
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  try {
    ws.close(code, reason);
  } catch {
    /* already closing */
  }
}

function connect(isReconnect) {
  clearTimeout(S.reconnectTimer);
  const c = S.config;
  const url = buildAudioUrl(c.wsBase, c.clientId, {
    station: c.station,
    tier: S.tier,
    format: S.format,
    resumeFrom: S.lastChunkId,
  });
  S.connection = isReconnect ? "reconnecting" : "connecting";
  S.gotAudioThisConnection = false;
  S.jitter.reset();
  let ws;
  try {
    ws = new WebSocket(url, [SUBPROTOCOL]);
  } catch (err) {
    fail(`cannot open ${url}: ${err.message}`);
    return;
  }
  ws.binaryType = "arraybuffer";
  S.ws = ws;
  ws.onopen = () => {
    S.openedAt = now();
    S.lastAudioAt = now();
  };
  ws.onmessage = (ev) => onMessage(ev.data, isReconnect);
  ws.onclose = (ev) => onClose(ev.code, ev.reason);
  postStatus();
}

function onClose(code, reason) {
  S.ws = null;
  if (!S.wanted) return;
  if (S.format === "binary" && !S.gotAudioThisConnection && code !== 1013) {
    S.binaryFailures += 1;
    if (S.binaryFailures >= BINARY_FAILURES_BEFORE_JSON) {
      S.format = "json"; // something between us and the server does not pass binary frames
      event("info", `falling back to JSON audio frames after ${S.binaryFailures} failed binary connections`);
    }
  }
  if (closeIsFinal(code)) {
    fail(code === 4000 ? "replaced by another connection with this client id" : `refused by the server (${code} ${reason})`);
    return;
  }
  scheduleReconnect(`closed ${code}${reason ? ` ${reason}` : ""}`);
}

function scheduleReconnect(why) {
  clearTimeout(S.reconnectTimer);
  S.dropped = true;
  S.connection = "reconnecting";
  const delay = S.backoff.next();
  event("info", `connection ${why}; reconnecting in ${Math.round(delay)} ms`);
  S.reconnectTimer = setTimeout(() => connect(true), delay);
  postStatus();
}

function fail(message) {
  S.connection = "failed";
  S.wanted = false;
  stopTimers();
  closeSocket(1000, "failed");
  S.lastError = message;
  event("error", message);
  postStatus();
}

function onMessage(data, isReconnect) {
  if (typeof data !== "string") {
    let frame;
    try {
      frame = parseBinaryFrame(data);
    } catch (err) {
      event("warning", err.message);
      return;
    }
    onChunk(frame);
    return;
  }
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    event("warning", "server sent a text frame that is not JSON");
    return;
  }
  switch (msg.type) {
    case "connection_established":
      S.connection = "open";
      S.serverVersion = msg.server_version ?? null;
      if (msg.buffer_config?.initial_tier) adoptTier(msg.buffer_config.initial_tier);
      if (isReconnect && S.dropped) S.reconnects += 1;
      S.dropped = false;
      postStatus();
      break;
    case "audio":
      try {
        const chunk = parseJsonAudio(msg);
        if (chunk.tier) adoptTier(chunk.tier);
        onChunk(chunk);
      } catch (err) {
        event("warning", `bad audio message: ${err.message}`);
      }
      break;
    case "buffer_status":
      if (msg.buffer_health?.current_tier) adoptTier(msg.buffer_health.current_tier);
      break;
    case "buffer_control_ack":
      adoptTier(msg.new_tier);
      break;
    case "pong":
      if (typeof msg.client_timestamp === "number") S.rttMs = now() - msg.client_timestamp * 1000;
      break;
    case "shutdown_warning":
      event("warning", `server shutting down (${msg.reason}); it keeps streaming for ${msg.drain_period_sec} s`);
      break;
    case "error":
      S.lastError = `${msg.error_code}: ${msg.error_message}`;
      event(msg.severity || "error", S.lastError, msg.error_code);
      if (msg.error_code === "UNKNOWN_STATION") fail(S.lastError);
      break;
    default:
      break; // extensions are welcome
  }
}

function onChunk({ chunkId, timestamp, pcm }) {
  const t = now();
  if (S.lastChunkId !== null) {
    if (chunkId <= S.lastChunkId) {
      S.duplicates += 1;
      return;
    }
    if (chunkId !== S.lastChunkId + 1) S.gaps += chunkId - S.lastChunkId - 1;
  }
  S.jitter.observe(chunkId, timestamp, t);
  S.lastChunkId = chunkId;
  S.chunksReceived += 1;
  S.lastAudioAt = t;
  S.gotAudioThisConnection = true;
  S.binaryFailures = 0;
  const planar = int16ToPlanar(pcm);
  S.worklet.postMessage({ type: "chunk", id: chunkId, pcm: planar, frames: planar.length / 2 }, [planar.buffer]);
}

function adoptTier(tier) {
  if (!(tier in TIERS) || tier === S.tier) return;
  S.tier = tier;
  S.worklet.postMessage({ type: "target", ms: TIERS[tier] });
  postStatus();
}

function requestTier(tier) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN && tier in TIERS) S.ws.send(bufferControl(tier, now()));
}

function send(text) {
  if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(text);
}

function startTimers() {
  stopTimers();
  S.timers.push(
    setInterval(() => {
      send(
        clientReport({
          bufferedMs: S.playout.bufferedMs,
          underruns: S.playout.underruns,
          playedChunks: Math.floor(S.playout.playedFrames / FRAMES_PER_CHUNK),
          nowMs: now(),
        }),
      );
    }, REPORT_INTERVAL_MS),
    setInterval(() => {
      if (S.connection !== "open") return;
      const want = S.policy.decide({
        nowMs: now(),
        tier: S.tier,
        spreadMs: S.jitter.spreadMs,
        underruns: S.playout.underruns,
      });
      if (want) {
        event("info", `asking for tier ${want}`);
        requestTier(want);
      }
    }, POLICY_INTERVAL_MS),
    setInterval(() => send(ping(now())), PING_INTERVAL_MS),
    setInterval(watchdog, 1000),
    setInterval(postStatus, STATUS_INTERVAL_MS),
  );
}

function stopTimers() {
  for (const t of S.timers) clearInterval(t);
  S.timers = [];
}

function watchdog() {
  const t = now();
  if (S.connection === "open" && t - S.openedAt > HEALTHY_AFTER_MS) S.backoff.reset();
  // A socket that is open but silent is dead (half-open TCP, stuck proxy): drop it ourselves.
  if (S.ws && S.ws.readyState === WebSocket.OPEN && t - S.lastAudioAt > STALL_TIMEOUT_MS) {
    closeSocket(4001, "stalled");
    scheduleReconnect("stalled");
  }
}

function event(level, message, code) {
  self.postMessage({ type: "event", level, message, code: code ?? null, at: now() });
}

function postStatus() {
  self.postMessage({
    type: "status",
    connection: S.connection,
    tier: S.tier,
    format: S.format,
    jitterMs: S.jitter.jitterMs,
    spreadMs: S.jitter.spreadMs,
    chunksReceived: S.chunksReceived,
    lastChunkId: S.lastChunkId,
    gaps: S.gaps,
    duplicates: S.duplicates,
    reconnects: S.reconnects,
    rttMs: S.rttMs,
    serverVersion: S.serverVersion,
    lastError: S.lastError,
  });
}
