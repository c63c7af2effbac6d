// Dedicated module worker: owns the WebSocket and the Opus decoder. connection.js decides (connect,
// reconnect with full-jitter backoff and resume_from, format fallbacks, close codes, decoding, jitter,
// the tier policy, client_report / buffer_control / ping, now playing); this file carries out its
// actions: the socket, the timers, the WebCodecs decoder (opus-decoder.js), and the messages to the
// main thread (status snapshots, events, now playing) and to the AudioWorklet (planar float chunks
// over a MessagePort, transferred, not copied).

import { INTERVALS_MS, StreamConnection } from "./connection.js";
import { chooseFormat, probeOpus } from "./formats.js";
import { OpusChunkDecoder } from "./opus-decoder.js";

const connection = new StreamConnection();
let worklet = null; // MessagePort to the AudioWorklet
let socket = null;
let reconnectTimer = null;
let intervals = [];
const now = () => performance.timeOrigin + performance.now();
const opusDecodes = probeOpus(globalThis.AudioDecoder); // asked once, at start-up
const decoder = new OpusChunkDecoder({
  onAudio: ({ chunkId, pcm, frames, rate }) =>
    worklet.postMessage({ type: "chunk", id: chunkId, pcm, frames, rate }, [pcm.buffer]),
  onError: (message) => run(connection.decoderFailed(message, now())),
});

// Commands run one after another: a start waits for the Opus probe, and a stop sent meanwhile waits for it.
let commands = Promise.resolve();
self.onmessage = (e) => {
  commands = commands
    .then(() => command(e.data, e.ports))
    .catch((err) => {
      self.postMessage({ type: "event", level: "error", message: `stream worker: ${err.message}`, code: null, at: now() });
    });
};

async function command(msg, ports) {
  switch (msg.cmd) {
    case "init":
      worklet = ports[0];
      worklet.onmessage = (ev) => {
        if (ev.data.type === "playout") connection.updatePlayout(ev.data);
      };
      break;
    case "start": {
      const format = chooseFormat(msg.config.format, await opusDecodes);
      run(connection.start({ ...msg.config, format }, now()));
      break;
    }
    case "stop":
      run(connection.stop(now()));
      break;
    case "tier":
      run(connection.requestTier(msg.tier, now()));
      break;
  }
}

function run(actions) {
  for (const action of actions) perform(action);
}

function perform(action) {
  switch (action.type) {
    case "connect":
      openSocket(action.url, action.protocols);
      break;
    case "close":
      closeSocket(action.code, action.reason);
      break;
    case "send":
      socket.send(action.text);
      break;
    case "schedule":
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(() => run(connection.reconnectDue(now())), action.delayMs);
      break;
    case "cancel":
      clearTimeout(reconnectTimer);
      break;
    case "intervals":
      for (const timer of intervals) clearInterval(timer);
      intervals = action.running
        ? Object.entries(INTERVALS_MS).map(([name, ms]) => setInterval(() => run(connection.interval(name, now())), ms))
        : [];
      break;
    case "post":
      self.postMessage(action.message);
      break;
    case "worklet":
      worklet.postMessage(action.message, action.transfer);
      break;
    case "decode":
      decoder.decode(action.chunkId, action.packets);
      break;
    case "reset-decoder":
      decoder.reset();
      break;
  }
}

function openSocket(url, protocols) {
  let ws;
  try {
    ws = new WebSocket(url, protocols);
  } catch (err) {
    run(connection.connectFailed(err, now()));
    return;
  }
  ws.binaryType = "arraybuffer";
  socket = ws;
  ws.onopen = () => run(connection.opened(now()));
  ws.onmessage = (ev) => run(connection.received(ev.data, now()));
  ws.onclose = (ev) => {
    socket = null;
    run(connection.closed(ev.code, ev.reason, now()));
  };
}

function closeSocket(code, reason) {
  const ws = socket;
  socket = null;
  if (!ws) return;
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  try {
    ws.close(code, reason);
  } catch {
    /* already closing */
  }
}
