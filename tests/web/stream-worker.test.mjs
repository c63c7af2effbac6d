// The stream worker's connection state machine (connection.js) driven with a fake clock, fake timers
// and fake sockets: the actions are carried out here the way stream-worker.js carries them out.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BINARY_FAILURES_BEFORE_JSON,
  HEALTHY_AFTER_MS,
  INTERVALS_MS,
  STALL_TIMEOUT_MS,
  StreamConnection,
} from "../../auralis_ray/web/connection.js";
import { CHUNK_BYTES, TIERS } from "../../auralis_ray/web/protocol.js";
import { opusFrame } from "./frames.mjs";

const START_MS = 1_700_000_000_000;
const CONFIG = Object.freeze({ wsBase: "ws://h:1", clientId: "web-1", station: "night", tier: "normal", tierFloor: "normal" });

/** setTimeout / setInterval on a clock that moves only when told to. */
class FakeClock {
  constructor(nowMs) {
    this.nowMs = nowMs;
    this.timers = new Map(); // id -> {at, periodMs, fn}
    this.nextId = 1;
  }

  setTimeout(fn, delayMs) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.nowMs + delayMs, periodMs: null, fn });
    return id;
  }

  setInterval(fn, periodMs) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.nowMs + periodMs, periodMs, fn });
    return id;
  }

  clear(id) {
    this.timers.delete(id);
  }

  /** Move time forward by `ms`, firing every timer due on the way, earliest first (ties: oldest first). */
  advance(ms) {
    const end = this.nowMs + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this.timers) if (timer.at <= end && (due === null || timer.at < due[1].at)) due = [id, timer];
      if (due === null) break;
      const [id, timer] = due;
      this.nowMs = timer.at;
      if (timer.periodMs === null) this.timers.delete(id);
      else timer.at += timer.periodMs;
      timer.fn();
    }
    this.nowMs = end;
  }
}

/** A WebSocket as the worker sees it: what it was opened with, what was sent, how it was closed. */
class FakeSocket {
  constructor(url, protocols) {
    this.url = new URL(url);
    this.protocols = protocols;
    this.sent = [];
    this.closedWith = null; // {code, reason} when the client closed it
  }

  sentOfType(type) {
    return this.sent.map((text) => JSON.parse(text)).filter((m) => m.type === type);
  }
}

/** The worker with fakes around it. */
class World {
  constructor({ random = () => 0.5, refuseConnect = null } = {}) {
    this.clock = new FakeClock(START_MS);
    this.connection = new StreamConnection({ random });
    this.refuseConnect = refuseConnect; // an Error that `new WebSocket` throws
    this.sockets = [];
    this.socket = null; // the current one
    this.posted = []; // to the main thread
    this.toWorklet = [];
    this.decoded = []; // {chunkId, packets} handed to the Opus decoder
    this.decoderResets = 0;
    this.reconnectTimer = null;
    this.reconnectDelays = [];
    this.intervals = [];
  }

  run(actions) {
    for (const action of actions) this.perform(action);
  }

  perform(action) {
    switch (action.type) {
      case "connect":
        if (this.refuseConnect) {
          this.run(this.connection.connectFailed(this.refuseConnect, this.clock.nowMs));
          break;
        }
        this.socket = new FakeSocket(action.url, action.protocols);
        this.sockets.push(this.socket);
        break;
      case "close":
        this.socket.closedWith = { code: action.code, reason: action.reason };
        this.socket = null;
        break;
      case "send":
        this.socket.sent.push(action.text);
        break;
      case "schedule":
        this.clock.clear(this.reconnectTimer);
        this.reconnectDelays.push(action.delayMs);
        this.reconnectTimer = this.clock.setTimeout(() => this.run(this.connection.reconnectDue(this.clock.nowMs)), action.delayMs);
        break;
      case "cancel":
        this.clock.clear(this.reconnectTimer);
        break;
      case "intervals":
        for (const id of this.intervals) this.clock.clear(id);
        this.intervals = action.running
          ? Object.entries(INTERVALS_MS).map(([name, ms]) =>
              this.clock.setInterval(() => this.run(this.connection.interval(name, this.clock.nowMs)), ms),
            )
          : [];
        break;
      case "post":
        this.posted.push(action.message);
        break;
      case "worklet":
        this.toWorklet.push(action.message);
        break;
      case "decode":
        this.decoded.push({ chunkId: action.chunkId, packets: action.packets });
        break;
      case "reset-decoder":
        this.decoderResets += 1;
        break;
      default:
        assert.fail(`unknown action ${action.type}`);
    }
  }

  // the listener
  start(config = {}) {
    this.run(this.connection.start({ ...CONFIG, ...config }, this.clock.nowMs));
  }

  stop() {
    this.run(this.connection.stop(this.clock.nowMs));
  }

  // the server, on the current socket
  open() {
    this.run(this.connection.opened(this.clock.nowMs));
  }

  send(data) {
    this.run(this.connection.received(data, this.clock.nowMs));
  }

  establish(initialTier = "normal", extra = {}) {
    this.open();
    this.send(JSON.stringify({ type: "connection_established", server_version: "9.9", buffer_config: { initial_tier: initialTier }, ...extra }));
  }

  /** `count` consecutive format=opus frames of five packets from `firstId`, one every 100 ms. */
  streamOpus(firstId, count) {
    for (let id = firstId; id < firstId + count; id++) {
      this.send(opusFrame(id, this.clock.nowMs / 1000, OPUS_PACKETS));
      this.clock.advance(100);
    }
  }

  /** `count` consecutive binary chunks from `firstId`, one every 100 ms, stamped as they are sent. */
  stream(firstId, count) {
    for (let id = firstId; id < firstId + count; id++) {
      this.send(binaryFrame(id, this.clock.nowMs / 1000));
      this.clock.advance(100);
    }
  }

  serverClose(code, reason = "") {
    this.run(this.connection.closed(code, reason, this.clock.nowMs));
  }

  /** The reconnect timer fires. */
  waitForReconnect() {
    const due = this.clock.timers.get(this.reconnectTimer);
    assert.ok(due, "a reconnect is scheduled");
    this.clock.advance(due.at - this.clock.nowMs);
  }

  // what the main thread saw
  get status() {
    return this.posted.filter((m) => m.type === "status").at(-1);
  }

  events(level) {
    return this.posted.filter((m) => m.type === "event" && (level === undefined || m.level === level));
  }
}

function binaryFrame(chunkId, timestampSec, bytes = CHUNK_BYTES) {
  const buf = new ArrayBuffer(16 + bytes);
  const view = new DataView(buf);
  view.setBigUint64(0, BigInt(chunkId), true);
  view.setFloat64(8, timestampSec, true);
  return buf;
}

function jsonAudio(chunkId, timestampSec, tier = "normal") {
  const data = Buffer.alloc(CHUNK_BYTES).toString("base64");
  return JSON.stringify({ type: "audio", chunk_id: chunkId, data, timestamp: timestampSec, buffer_depth: 0, current_tier: tier });
}

const query = (socket) => Object.fromEntries(socket.url.searchParams);
const OPUS_PACKETS = Array.from({ length: 5 }, (_, i) => Uint8Array.of(0xfc, i, 7));
const OPUS_CODEC = { name: "opus", sample_rate: 48000, channels: 2, frame_ms: 20, bitrate: 128000 };
const OPUS_ESTABLISHED = { buffer_config: { initial_tier: "normal", format: "opus" }, codec: OPUS_CODEC };

test("start opens one socket at the live edge, with the subprotocol, and primes the worklet", () => {
  const w = new World();
  w.start();
  assert.equal(w.sockets.length, 1);
  assert.equal(w.socket.url.pathname, "/ws/audio/web-1");
  assert.deepEqual(query(w.socket), { station: "night", buffer_tier: "normal", format: "binary" });
  assert.deepEqual(w.socket.protocols, ["auralis-v1"]);
  assert.deepEqual(w.toWorklet, [{ type: "flush" }, { type: "target", ms: 1000 }, { type: "start" }]);
  assert.equal(w.status.connection, "connecting");
});

test("connection_established opens the stream and adopts the server's tier", () => {
  const w = new World();
  w.start();
  w.establish("stable");
  assert.equal(w.status.connection, "open");
  assert.equal(w.status.serverVersion, "9.9");
  assert.equal(w.status.tier, "stable");
  assert.deepEqual(w.toWorklet.at(-1), { type: "target", ms: TIERS.stable });
  assert.equal(w.status.reconnects, 0);
});

test("chunks reach the worklet as planar float; duplicates are dropped, skipped ids counted", () => {
  const w = new World();
  w.start();
  w.establish();
  w.stream(10, 3);
  w.send(binaryFrame(11, 0)); // a duplicate
  w.send(jsonAudio(15, 0)); // 13 and 14 skipped
  const chunks = w.toWorklet.filter((m) => m.type === "chunk");
  assert.deepEqual(chunks.map((m) => m.id), [10, 11, 12, 15]);
  assert.ok(chunks[0].pcm instanceof Float32Array && chunks[0].frames === 4410);
  w.clock.advance(INTERVALS_MS.status);
  assert.equal(w.status.chunksReceived, 4);
  assert.equal(w.status.lastChunkId, 15);
  assert.equal(w.status.duplicates, 1);
  assert.equal(w.status.gaps, 2);
});

test("a dropped connection reconnects after the backoff delay and resumes from the last chunk id", () => {
  const w = new World({ random: () => 0.5 });
  w.start();
  w.establish();
  w.stream(100, 5);
  w.serverClose(1012, "restart");
  assert.equal(w.status.connection, "reconnecting");
  assert.deepEqual(w.reconnectDelays, [125]); // half of the 250 ms base
  assert.match(w.events("info").at(-1).message, /closed 1012 restart; reconnecting in 125 ms/);
  w.clock.advance(124);
  assert.equal(w.sockets.length, 1, "not before the delay");
  w.clock.advance(1);
  assert.equal(w.sockets.length, 2);
  assert.equal(query(w.socket).resume_from, "104");
  w.establish();
  assert.equal(w.status.reconnects, 1);
  w.stream(105, 2);
  assert.equal(w.status.gaps, 0);
});

test("after a restart of the system the resume point is gone: BUFFER_OVERRUN, and the new, lower ids play", () => {
  const w = new World({ random: () => 0.5 });
  w.start();
  w.establish();
  w.stream(5000, 3);
  w.serverClose(1006);
  w.waitForReconnect();
  assert.equal(query(w.socket).resume_from, "5002");
  w.establish();
  w.send(JSON.stringify({ type: "error", error_code: "BUFFER_OVERRUN", severity: "warning",
    error_message: "resume point 5002 lies ahead of the live edge; continuing from the live edge at 40" }));
  w.stream(40, 3);
  w.clock.advance(INTERVALS_MS.status);
  assert.equal(w.status.lastChunkId, 42);
  assert.equal(w.status.duplicates, 0, "the new timeline's chunks are not taken for duplicates");
  assert.deepEqual(w.toWorklet.filter((m) => m.type === "chunk").map((m) => m.id), [5000, 5001, 5002, 40, 41, 42]);
  w.send(binaryFrame(41, 0));
  w.clock.advance(INTERVALS_MS.status);
  assert.equal(w.status.duplicates, 1, "after the skip, duplicates are dropped again");
});

test("client_report counts underruns and played chunks from the connection's start, as the server does", () => {
  const w = new World({ random: () => 0.5 });
  w.start();
  w.establish();
  w.connection.updatePlayout({ state: "playing", bufferedMs: 900, underruns: 3, playedMs: 5000 });
  w.serverClose(1006);
  w.waitForReconnect();
  w.establish();
  w.connection.updatePlayout({ state: "playing", bufferedMs: 900, underruns: 4, playedMs: 7000 });
  w.stream(1, INTERVALS_MS.report / 100);
  const report = w.socket.sentOfType("client_report").at(-1);
  assert.equal(report.underruns, 1);
  assert.equal(report.played_chunks, 20);
});

test("the backoff grows while connections keep failing, and a healthy connection resets it", () => {
  const w = new World({ random: () => 0.5 });
  w.start();
  for (let i = 0; i < 7; i++) {
    w.open();
    w.send(jsonAudio(i, 0)); // audio, so binary is not blamed
    w.serverClose(1006);
    w.waitForReconnect();
  }
  assert.deepEqual(w.reconnectDelays, [125, 250, 500, 1000, 2000, 4000, 5000]); // capped at 10 s
  w.establish();
  w.stream(100, HEALTHY_AFTER_MS / 100 + 11); // up past the healthy mark, and one watchdog tick after it
  w.serverClose(1006);
  assert.equal(w.reconnectDelays.at(-1), 125);
});

test("4000 (replaced) and 1008 (refused) are final: no reconnect, the stream fails", () => {
  for (const [code, error] of [[4000, /replaced by another connection/], [1008, /refused by the server \(1008 bad id\)/]]) {
    const w = new World();
    w.start();
    w.establish();
    w.stream(1, 3);
    w.serverClose(code, "bad id");
    assert.equal(w.status.connection, "failed");
    assert.match(w.status.lastError, error);
    assert.equal(w.events("error").length, 1);
    assert.equal(w.clock.timers.size, 0, "no reconnect, no periodic duty left");
    w.clock.advance(60_000);
    assert.equal(w.sockets.length, 1);
  }
});

test("UNKNOWN_STATION closes the socket and fails", () => {
  const w = new World();
  w.start({ station: "nowhere" });
  w.open();
  w.send(JSON.stringify({ type: "error", error_code: "UNKNOWN_STATION", error_message: "no station nowhere", severity: "error" }));
  assert.deepEqual(w.sockets[0].closedWith, { code: 1000, reason: "failed" });
  assert.equal(w.status.connection, "failed");
  assert.equal(w.status.lastError, "UNKNOWN_STATION: no station nowhere");
  w.serverClose(1008); // the server's close of the socket we let go
  assert.equal(w.sockets.length, 1);
});

test("two binary connections that end before any audio switch to JSON frames", () => {
  const w = new World();
  w.start();
  for (let i = 0; i < BINARY_FAILURES_BEFORE_JSON; i++) {
    assert.equal(query(w.socket).format, "binary");
    w.establish();
    w.serverClose(1006);
    w.waitForReconnect();
  }
  assert.equal(query(w.socket).format, "json");
  assert.equal(w.status.format, "json");
  assert.match(w.events("info").find((e) => /falling back/.test(e.message)).message, /after 2 failed binary connections/);
});

test("binary is not blamed for overload (1013), a drain's refusal (1012), a connection never taken, or one that brought audio", () => {
  const w = new World();
  w.start();
  for (let i = 0; i < 3; i++) {
    w.open();
    w.serverClose(1013, "overloaded");
    w.waitForReconnect();
  }
  for (let i = 0; i < 3; i++) {
    w.establish();
    w.serverClose(1012, "server is draining; reconnect");
    w.waitForReconnect();
  }
  for (let i = 0; i < 3; i++) {
    w.serverClose(1006); // the network is away: the socket never opens
    w.waitForReconnect();
  }
  w.establish();
  w.stream(1, 2);
  w.serverClose(1006);
  w.waitForReconnect();
  w.open();
  w.serverClose(1006);
  w.waitForReconnect();
  assert.equal(query(w.socket).format, "binary");
});

test("an open socket without audio for the stall timeout is closed 4001 and replaced", () => {
  const w = new World({ random: () => 0 });
  w.start();
  w.establish();
  w.stream(1, 10);
  const lastAudioAt = w.clock.nowMs - 100;
  w.clock.advance(lastAudioAt + STALL_TIMEOUT_MS - w.clock.nowMs);
  assert.equal(w.sockets[0].closedWith, null, "silent for the timeout, not longer");
  w.clock.advance(INTERVALS_MS.watchdog); // the next watchdog tick
  assert.deepEqual(w.sockets[0].closedWith, { code: 4001, reason: "stalled" });
  assert.match(w.events("info").at(-1).message, /connection stalled/);
  w.clock.advance(0); // the reconnect delay is 0 with this random
  assert.equal(w.sockets.length, 2);
  assert.equal(query(w.socket).resume_from, "10");
});

test("a connect that hangs is given up after the stall timeout and tried again", () => {
  const w = new World({ random: () => 0 });
  w.start(); // the socket never opens, nor fails
  w.clock.advance(STALL_TIMEOUT_MS);
  assert.equal(w.sockets[0].closedWith, null, "connecting for the timeout, not longer");
  w.clock.advance(INTERVALS_MS.watchdog);
  assert.deepEqual(w.sockets[0].closedWith, { code: 4001, reason: "connect timed out" });
  assert.match(w.events("info").at(-1).message, /timed out connecting/);
  w.clock.advance(0);
  assert.equal(w.sockets.length, 2);
});

test("stop closes the socket, cancels the reconnect and the periodic duties", () => {
  const w = new World();
  w.start();
  w.establish();
  w.serverClose(1006);
  w.waitForReconnect();
  w.stop();
  assert.deepEqual(w.sockets[1].closedWith, { code: 1000, reason: "stop" });
  assert.equal(w.status.connection, "closed");
  assert.deepEqual(w.toWorklet.at(-1), { type: "stop" });
  assert.equal(w.clock.timers.size, 0);

  const v = new World();
  v.start();
  v.establish();
  v.serverClose(1006); // a reconnect pending
  v.stop();
  v.clock.advance(60_000);
  assert.equal(v.sockets.length, 1, "the pending reconnect was cancelled");
});

test("a restart (another station) closes the old socket and listens from the live edge", () => {
  const w = new World();
  w.start();
  w.establish();
  w.stream(50, 3);
  w.start({ station: "default" });
  assert.deepEqual(w.sockets[0].closedWith, { code: 1000, reason: "restart" });
  assert.deepEqual(query(w.socket), { station: "default", buffer_tier: "normal", format: "binary" });
});

test("a restart while a reconnect is pending replaces it and is not counted as a reconnect", () => {
  const w = new World();
  w.start();
  w.establish();
  w.stream(50, 3);
  w.serverClose(1006);
  w.start({ station: "default" });
  w.establish();
  w.clock.advance(w.reconnectDelays[0] + 1); // past the cancelled reconnect, short of a stall
  assert.equal(w.sockets.length, 2, "the pending reconnect was cancelled");
  assert.equal(w.status.reconnects, 0);
});

test("reports and pings go out on their intervals, only on an open socket; a pong gives the round trip", () => {
  const w = new World();
  w.start();
  w.clock.advance(STALL_TIMEOUT_MS); // a slow connect, not yet given up
  assert.deepEqual(w.sockets[0].sent, [], "nothing before the handshake");
  w.establish();
  w.connection.updatePlayout({ state: "playing", bufferedMs: 987.6, underruns: 0, playedMs: 4200 });
  w.stream(1, (INTERVALS_MS.ping - STALL_TIMEOUT_MS) / 100); // up to the first ping, 15 s after the start
  const reports = w.socket.sentOfType("client_report");
  assert.equal(reports.length, 5); // every 2 s of the clock: at 6, 8, ... 14 s after the start
  assert.deepEqual(reports[0], {
    type: "client_report",
    buffered_ms: 988,
    underruns: 0,
    played_chunks: 42,
    timestamp: (START_MS + 6_000) / 1000,
  });
  const pings = w.socket.sentOfType("ping");
  assert.deepEqual(pings, [{ type: "ping", timestamp: (START_MS + INTERVALS_MS.ping) / 1000 }]);
  w.clock.advance(40);
  w.send(JSON.stringify({ type: "pong", timestamp: 0, client_timestamp: pings[0].timestamp }));
  w.clock.advance(INTERVALS_MS.status);
  assert.equal(Math.round(w.status.rttMs), 40);
});

test("an underrun makes the policy ask one tier up; the ack moves the worklet's target", () => {
  const w = new World();
  w.start();
  w.establish();
  w.connection.updatePlayout({ state: "playing", bufferedMs: 0, underruns: 0, playedMs: 0 });
  w.stream(1, 10);
  w.connection.updatePlayout({ state: "buffering", bufferedMs: 0, underruns: 1, playedMs: 0 });
  w.stream(11, 10);
  const asked = w.socket.sentOfType("buffer_control");
  assert.deepEqual(asked.map((m) => m.requested_tier), ["stable"]);
  w.send(JSON.stringify({ type: "buffer_control_ack", previous_tier: "normal", new_tier: "stable" }));
  assert.deepEqual(w.toWorklet.at(-1), { type: "target", ms: TIERS.stable });
  assert.equal(w.status.tier, "stable");
});

test("a tier the listener asks for is sent only while the socket is open", () => {
  const w = new World();
  w.start();
  w.run(w.connection.requestTier("defensive", w.clock.nowMs));
  w.establish();
  w.run(w.connection.requestTier("defensive", w.clock.nowMs));
  w.run(w.connection.requestTier("huge", w.clock.nowMs));
  assert.deepEqual(w.socket.sentOfType("buffer_control").map((m) => m.requested_tier), ["defensive"]);
});

test("malformed frames are reported as warnings and the stream goes on", () => {
  const w = new World();
  w.start();
  w.establish();
  w.send("not json");
  w.send(new ArrayBuffer(10));
  w.send(JSON.stringify({ type: "audio", chunk_id: 1, data: "%%%", timestamp: 0 }));
  w.send(JSON.stringify({ type: "something_new" }));
  assert.equal(w.events("warning").length, 3);
  w.stream(1, 2);
  assert.equal(w.status.connection, "open");
  assert.equal(w.toWorklet.filter((m) => m.type === "chunk").length, 2);
});

test("a socket the browser refuses to open fails the stream with the URL", () => {
  const w = new World({ refuseConnect: new SyntaxError("bad URL") });
  w.start();
  assert.equal(w.status.connection, "failed");
  assert.match(w.status.lastError, /^cannot open ws:\/\/h:1\/ws\/audio\/web-1\?.*: bad URL$/);
  assert.equal(w.clock.timers.size, 0);
});

test("PCM chunks tell the worklet their rate", () => {
  const w = new World();
  w.start();
  w.establish();
  w.stream(1, 1);
  w.send(jsonAudio(2, 0));
  assert.deepEqual(w.toWorklet.filter((m) => m.type === "chunk").map((m) => m.rate), [44100, 44100]);
});

test("format=opus: frames go to the decoder, duplicates are dropped, skipped ids counted, the codec shown", () => {
  const w = new World();
  w.start({ format: "opus" });
  assert.equal(query(w.socket).format, "opus");
  w.establish("normal", OPUS_ESTABLISHED);
  w.streamOpus(10, 3);
  w.send(opusFrame(11, 0, OPUS_PACKETS)); // a duplicate
  w.send(opusFrame(15, 0, OPUS_PACKETS)); // 13 and 14 skipped
  assert.deepEqual(w.decoded.map((d) => d.chunkId), [10, 11, 12, 15]);
  assert.deepEqual(w.decoded[0].packets, OPUS_PACKETS);
  assert.equal(w.toWorklet.filter((m) => m.type === "chunk").length, 0, "the decoder feeds the worklet");
  w.clock.advance(INTERVALS_MS.status);
  assert.equal(w.status.format, "opus");
  assert.deepEqual(w.status.codec, OPUS_CODEC);
  assert.equal(w.status.chunksReceived, 4);
  assert.equal(w.status.duplicates, 1);
  assert.equal(w.status.gaps, 2);
});

test("format=opus: a dropped connection resumes from the last chunk id, with the decoder's state kept", () => {
  const w = new World({ random: () => 0.5 });
  w.start({ format: "opus" });
  const resetsAtStart = w.decoderResets;
  assert.equal(resetsAtStart, 1, "a start begins a fresh decoder");
  w.establish("normal", OPUS_ESTABLISHED);
  w.streamOpus(100, 5);
  w.serverClose(1012, "restart");
  w.waitForReconnect();
  assert.deepEqual(query(w.socket), { station: "night", buffer_tier: "normal", format: "opus", resume_from: "104" });
  w.establish("normal", OPUS_ESTABLISHED);
  w.streamOpus(105, 2);
  assert.deepEqual(w.decoded.map((d) => d.chunkId), [100, 101, 102, 103, 104, 105, 106]);
  assert.equal(w.decoderResets, resetsAtStart);
  assert.equal(w.status.reconnects, 1);
  assert.equal(w.status.gaps, 0);
  w.stop();
  assert.equal(w.decoderResets, resetsAtStart + 1, "a stop drops the decoder");
});

test("a server without format=opus (INVALID_MESSAGE, then 1008) is asked again for PCM at once", () => {
  const w = new World();
  w.start({ format: "opus" });
  w.open();
  w.send(JSON.stringify({ type: "error", error_code: "INVALID_MESSAGE", error_message: "format must be json or binary", severity: "error" }));
  w.serverClose(1008);
  assert.equal(w.sockets.length, 2);
  assert.equal(query(w.socket).format, "binary");
  assert.notEqual(w.status.connection, "failed");
  assert.match(w.events("info").at(-1).message, /does not offer Opus/);
  w.establish();
  w.stream(1, 2);
  assert.equal(w.toWorklet.filter((m) => m.type === "chunk").length, 2);
  assert.equal(w.status.reconnects, 0);
});

test("an INVALID_MESSAGE answer to a message during the stream does not cost Opus", () => {
  const w = new World();
  w.start({ format: "opus" });
  w.establish("normal", OPUS_ESTABLISHED);
  w.send(JSON.stringify({ type: "error", error_code: "INVALID_MESSAGE", error_message: "bad report", severity: "warning" }));
  w.streamOpus(1, 2);
  w.serverClose(1012);
  w.waitForReconnect();
  assert.equal(query(w.socket).format, "opus");
});

test("an Opus decoder failure switches to PCM, resuming after the last chunk received", () => {
  const w = new World();
  w.start({ format: "opus" });
  w.establish("normal", OPUS_ESTABLISHED);
  w.streamOpus(20, 3);
  w.run(w.connection.decoderFailed("corrupt packet", w.clock.nowMs));
  assert.deepEqual(w.sockets[0].closedWith, { code: 1000, reason: "format" });
  assert.deepEqual(query(w.socket), { station: "night", buffer_tier: "normal", format: "binary", resume_from: "22" });
  assert.match(w.events("warning").at(-1).message, /Opus decoding failed \(corrupt packet\); listening to PCM/);
  w.establish();
  w.stream(23, 2);
  assert.deepEqual(w.toWorklet.filter((m) => m.type === "chunk").map((m) => m.id), [23, 24]);
  assert.equal(w.status.codec, null);
  assert.equal(w.status.reconnects, 0);
  w.run(w.connection.decoderFailed("late", w.clock.nowMs)); // not decoding any more: nothing happens
  assert.equal(w.sockets.length, 2);
});

test("Opus, like binary PCM, falls back to JSON after connections that end before any audio", () => {
  const w = new World();
  w.start({ format: "opus" });
  for (let i = 0; i < BINARY_FAILURES_BEFORE_JSON; i++) {
    w.establish("normal", OPUS_ESTABLISHED);
    w.serverClose(1006);
    w.waitForReconnect();
  }
  assert.equal(query(w.socket).format, "json");
});

test("now_playing reaches the main thread when its first chunk plays, not when it is announced", () => {
  const w = new World();
  w.start({ format: "opus" });
  w.establish("normal", OPUS_ESTABLISHED);
  const announced = (since, section) =>
    JSON.stringify({ type: "now_playing", station: "night", preset: "sleep", key: "A", mode: "aeolian", bpm: 44, section, section_number: 1, since_chunk_id: since });
  w.send(announced(50, "still")); // sounding since before the listener joined
  const heard = () => w.posted.filter((m) => m.type === "now_playing").map((m) => m.nowPlaying.section);
  assert.deepEqual(heard(), [], "nothing plays yet");
  w.connection.updatePlayout({ state: "playing", bufferedMs: 1000, underruns: 0, playedMs: 0 });
  w.streamOpus(100, 10);
  assert.deepEqual(heard(), ["still"]);
  w.send(announced(112, "bloom")); // chunk 112 plays a buffer (10 chunks) after it arrives
  w.streamOpus(110, 10);
  assert.deepEqual(heard(), ["still"]);
  w.streamOpus(120, 3);
  assert.deepEqual(heard(), ["still", "bloom"]);
  w.send(announced(140, "pulse")); // announced, not heard yet, when the listener switches station
  w.start({ station: "default", format: "opus" });
  w.establish("normal", OPUS_ESTABLISHED);
  w.streamOpus(2000, 20);
  assert.deepEqual(heard(), ["still", "bloom"], "another station's schedule starts empty");
});
