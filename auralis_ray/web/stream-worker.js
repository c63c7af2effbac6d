// Dedicated module worker: owns the WebSocket. connection.js decides (connect, reconnect with
// full-jitter backoff and resume_from, JSON fallback, close codes, decoding, jitter, the tier policy,
// client_report / buffer_control / ping); this file carries out its actions: the socket, the timers,
// and the messages to the main thread (status snapshots and events) and to the AudioWorklet (planar
// float chunks over a MessagePort, transferred, not copied).

import { INTERVALS_MS, StreamConnection } from "./connection.js";

const connection = new StreamConnection();
let worklet = null; // MessagePort to the AudioWorklet
let socket = null;
let reconnectTimer = null;
let intervals = [];

const now = () => performance.timeOrigin + performance.now();

self.onmessage = (e) => {
  const msg = e.data;
  switch (msg.cmd) {
    case "init":
      worklet = e.ports[0];
      worklet.onmessage = (ev) => {
        if (ev.data.type === "playout") connection.updatePlayout(ev.data);
      };
      break;
    case "start":
      run(connection.start(msg.config, now()));
      break;
    case "stop":
      run(connection.stop(now()));
      break;
    case "tier":
      run(connection.requestTier(msg.tier, now()));
      break;
  }
};

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
