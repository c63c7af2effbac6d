// The stream worker's connection state machine, without I/O. The worker feeds it what happens (start,
// stop, the socket's open / message / close, a timer firing, the worklet's playout snapshot) together
// with the time, and carries out the actions it returns, in order:
//
//   {type: "connect", url, protocols}     open a WebSocket (binaryType "arraybuffer"): the socket
//   {type: "close", code, reason}         close the socket and stop listening to its events
//   {type: "send", text}                  send a text frame on the open socket
//   {type: "schedule", delayMs}           call reconnectDue() after delayMs, replacing a pending call
//   {type: "cancel"}                      drop a pending reconnectDue() call
//   {type: "intervals", running}          call interval(name) every INTERVALS_MS[name], or stop
//   {type: "post", message}               a status snapshot or an event for the main thread
//   {type: "worklet", message, transfer}  a message (and buffers to transfer) for the AudioWorklet
//   {type: "decode", chunkId, packets}    decode a chunk's Opus packets (opus-decoder.js), on to the worklet
//   {type: "reset-decoder"}               forget the Opus decoder's state and what it still decodes
//
// It connects, reconnects with full-jitter backoff and resume_from (the last chunk_id received),
// listens to PCM when the server refuses format=opus or the Opus decoder fails, switches to JSON
// audio frames after binary (PCM or Opus) connections that end before any audio, treats the final
// close codes (protocol.js closeIsFinal) and UNKNOWN_STATION as the end, drops an open socket that
// stays silent, and passes `now_playing` on to the main thread when the listener hears it.

import { Backoff } from "./backoff.js";
import { Format } from "./formats.js";
import { JitterTracker } from "./jitter.js";
import { NowPlayingSchedule, parseNowPlaying } from "./now-playing.js";
import {
  CHUNK_MS,
  SAMPLE_RATE,
  SUBPROTOCOL,
  TIERS,
  buildAudioUrl,
  bufferControl,
  clientReport,
  closeIsFinal,
  int16ToPlanar,
  parseBinaryFrame,
  parseJsonAudio,
  parseOpusFrame,
  ping,
} from "./protocol.js";
import { TierPolicy } from "./tier.js";

/** How often (ms) each periodic duty runs while the listener wants audio. */
export const INTERVALS_MS = Object.freeze({ report: 2000, policy: 1000, ping: 15000, watchdog: 1000, status: 250 });
export const STALL_TIMEOUT_MS = 4000; // open socket but no audio: treat as dead
export const HEALTHY_AFTER_MS = 5000; // a connection up this long resets the backoff
export const BINARY_FAILURES_BEFORE_JSON = 2;

/** One listener's stream connection: state in, actions out. */
export class StreamConnection {
  /**
   * @param {object} [o]
   * @param {() => number} [o.random] uniform in [0, 1), for the reconnect backoff
   */
  constructor({ random = Math.random } = {}) {
    this.config = null; // {wsBase, clientId, station, tier, format, tierFloor}
    this.socket = null; // null | "connecting" | "open"
    this.url = null; // the socket's URL
    this.wanted = false; // the listener wants audio
    this.connection = "closed"; // closed | connecting | open | reconnecting | failed
    this.resuming = false; // the socket replaces one that ended
    this.dropped = false; // the last connection ended without us asking
    this.lastChunkId = null;
    this.chunksReceived = 0;
    this.gaps = 0; // chunk ids skipped (only after a server BUFFER_OVERRUN)
    this.duplicates = 0;
    this.reconnects = 0;
    this.openedAt = 0;
    this.lastAudioAt = 0;
    this.gotAudioThisConnection = false;
    this.establishedThisConnection = false;
    this.formatRefused = false; // the server answered this connection's format with INVALID_MESSAGE
    this.binaryFailures = 0;
    this.tier = "normal";
    this.format = Format.BINARY; // opus | binary | json
    this.codec = null; // connection_established's codec: {name, sample_rate, channels, frame_ms, bitrate}
    this.rttMs = null;
    this.serverVersion = null;
    this.lastError = null;
    this.playout = { state: "idle", bufferedMs: 0, underruns: 0, playedMs: 0 };
    this.reportBase = { underruns: 0, playedMs: 0 }; // the player's counts when this connection opened
    this.skipAnnounced = false; // a BUFFER_OVERRUN came: the next chunk may come from anywhere
    this.nowPlaying = new NowPlayingSchedule();
    this.backoff = new Backoff({ baseMs: 250, capMs: 10000, random });
    this.jitter = new JitterTracker({ chunkMs: CHUNK_MS });
    this.policy = null;
    this.nowMs = 0; // the time of the input being handled
    this.actions = [];
  }

  // ---- inputs ----

  /** The listener wants audio: connect to `config.station` from its live edge (`config.format`: opus, binary or json). */
  start(config, nowMs) {
    this.nowMs = nowMs;
    this.config = config;
    this.format = config.format || Format.BINARY;
    this.codec = null;
    this.nowPlaying.clear();
    this.#emit({ type: "reset-decoder" });
    this.policy = new TierPolicy({ floor: config.tierFloor || "normal" });
    this.tier = config.tier || "normal";
    this.wanted = true;
    this.#toWorklet({ type: "flush" });
    this.#toWorklet({ type: "target", ms: TIERS[this.tier] });
    this.#toWorklet({ type: "start" });
    this.lastChunkId = null; // a fresh start (or another station) listens from the live edge
    this.backoff.reset();
    this.#closeSocket(1000, "restart");
    this.#emit({ type: "intervals", running: true });
    this.#connect(false);
    return this.#take();
  }

  /** The listener stops. */
  stop(nowMs) {
    this.nowMs = nowMs;
    this.wanted = false;
    this.#emit({ type: "cancel" });
    this.#emit({ type: "intervals", running: false });
    this.#closeSocket(1000, "stop");
    this.connection = "closed";
    this.nowPlaying.clear();
    this.#emit({ type: "reset-decoder" });
    this.#toWorklet({ type: "stop" });
    this.#postStatus();
    return this.#take();
  }

  /** The listener asks for a tier. */
  requestTier(tier, nowMs) {
    this.nowMs = nowMs;
    this.#requestTier(tier);
    return this.#take();
  }

  /** The worklet's latest playout snapshot: {state, bufferedMs, underruns, playedMs, ...}. */
  updatePlayout(snapshot) {
    this.playout = snapshot;
  }

  /** Opening the socket threw (a URL or port the browser refuses). */
  connectFailed(error, nowMs) {
    this.nowMs = nowMs;
    this.socket = null;
    this.#fail(`cannot open ${this.url}: ${error.message}`);
    return this.#take();
  }

  /** The socket's handshake completed. */
  opened(nowMs) {
    this.nowMs = nowMs;
    if (this.socket === null) return [];
    this.socket = "open";
    this.openedAt = nowMs;
    this.lastAudioAt = nowMs;
    return this.#take();
  }

  /** A frame arrived: a string (JSON control or audio) or an ArrayBuffer (binary audio). */
  received(data, nowMs) {
    this.nowMs = nowMs;
    if (this.socket === null) return [];
    if (typeof data === "string") this.#onText(data);
    else this.#onBinary(data);
    return this.#take();
  }

  /** The socket closed, by the server or the network. */
  closed(code, reason, nowMs) {
    this.nowMs = nowMs;
    if (this.socket === null) return []; // one we already let go
    this.socket = null;
    if (!this.wanted) return [];
    if (this.format === Format.OPUS && this.formatRefused && !this.establishedThisConnection) {
      this.format = Format.BINARY; // a server without format=opus
      this.#event("info", "the server does not offer Opus; listening to PCM");
      this.#connect(this.resuming);
      return this.#take();
    }
    // binary is blamed for a connection the server took (connection_established) that then brought no
    // audio; not for one that never opened (the network, a draining replica's 1012) or an overload
    if (this.format !== Format.JSON && this.establishedThisConnection && !this.gotAudioThisConnection &&
        code !== 1012 && code !== 1013) {
      this.binaryFailures += 1;
      if (this.binaryFailures >= BINARY_FAILURES_BEFORE_JSON) {
        this.format = Format.JSON; // something between us and the server does not pass binary frames
        this.#event("info", `falling back to JSON audio frames after ${this.binaryFailures} failed binary connections`);
      }
    }
    if (closeIsFinal(code)) {
      this.#fail(code === 4000 ? "replaced by another connection with this client id" : `refused by the server (${code} ${reason})`);
    } else {
      this.#scheduleReconnect(`closed ${code}${reason ? ` ${reason}` : ""}`);
    }
    return this.#take();
  }

  /** The Opus decoder failed (it is closed): listen to PCM from the next chunk on. */
  decoderFailed(message, nowMs) {
    this.nowMs = nowMs;
    if (this.format !== Format.OPUS || !this.wanted) return [];
    this.format = Format.BINARY;
    this.codec = null;
    this.#event("warning", `Opus decoding failed (${message}); listening to PCM`);
    this.#closeSocket(1000, "format");
    this.#connect(this.lastChunkId !== null);
    return this.#take();
  }

  /** The reconnect delay has passed. */
  reconnectDue(nowMs) {
    this.nowMs = nowMs;
    if (this.wanted) this.#connect(true);
    return this.#take();
  }

  /** A periodic duty is due: one of the names in INTERVALS_MS. */
  interval(name, nowMs) {
    this.nowMs = nowMs;
    switch (name) {
      case "report":
        this.#send(
          // the server counts underruns and played chunks from this connection's start
          clientReport({
            bufferedMs: this.playout.bufferedMs,
            underruns: Math.max(0, (this.playout.underruns ?? 0) - this.reportBase.underruns),
            playedChunks: Math.max(0, Math.floor(((this.playout.playedMs ?? 0) - this.reportBase.playedMs) / CHUNK_MS)),
            nowMs,
          }),
        );
        break;
      case "policy":
        this.#adaptTier();
        break;
      case "ping":
        this.#send(ping(nowMs));
        break;
      case "watchdog":
        this.#watchdog();
        break;
      case "status":
        this.#releaseNowPlaying();
        this.#postStatus();
        break;
      default:
        throw new RangeError(`unknown interval ${name}`);
    }
    return this.#take();
  }

  /** What the main thread shows. */
  status() {
    return {
      type: "status",
      connection: this.connection,
      tier: this.tier,
      format: this.format,
      codec: this.codec,
      jitterMs: this.jitter.jitterMs,
      spreadMs: this.jitter.spreadMs,
      chunksReceived: this.chunksReceived,
      lastChunkId: this.lastChunkId,
      gaps: this.gaps,
      duplicates: this.duplicates,
      reconnects: this.reconnects,
      rttMs: this.rttMs,
      serverVersion: this.serverVersion,
      lastError: this.lastError,
    };
  }

  // ---- transitions ----

  #connect(resuming) {
    this.#emit({ type: "cancel" });
    const c = this.config;
    this.url = buildAudioUrl(c.wsBase, c.clientId, {
      station: c.station,
      tier: this.tier,
      format: this.format,
      resumeFrom: this.lastChunkId,
    });
    this.connection = resuming ? "reconnecting" : "connecting";
    this.resuming = resuming;
    this.gotAudioThisConnection = false;
    this.establishedThisConnection = false;
    this.formatRefused = false;
    this.skipAnnounced = false;
    this.jitter.reset();
    this.#postStatus();
    // last, so that a connect that fails (connectFailed) reports after this status
    this.socket = "connecting";
    this.connectingSince = this.nowMs;
    this.#emit({ type: "connect", url: this.url, protocols: [SUBPROTOCOL] });
  }

  #closeSocket(code, reason) {
    if (this.socket === null) return;
    this.socket = null;
    this.#emit({ type: "close", code, reason });
  }

  #scheduleReconnect(why) {
    this.dropped = true;
    this.connection = "reconnecting";
    const delayMs = this.backoff.next();
    this.#event("info", `connection ${why}; reconnecting in ${Math.round(delayMs)} ms`);
    this.#emit({ type: "schedule", delayMs });
    this.#postStatus();
  }

  #fail(message) {
    this.connection = "failed";
    this.wanted = false;
    this.#emit({ type: "intervals", running: false });
    this.#closeSocket(1000, "failed");
    this.lastError = message;
    this.#event("error", message);
    this.#postStatus();
  }

  #watchdog() {
    const t = this.nowMs;
    if (this.connection === "open" && t - this.openedAt > HEALTHY_AFTER_MS) this.backoff.reset();
    // A socket that is open but silent is dead (half-open TCP, stuck proxy): drop it ourselves.
    if (this.socket === "open" && t - this.lastAudioAt > STALL_TIMEOUT_MS) {
      this.#closeSocket(4001, "stalled");
      this.#scheduleReconnect("stalled");
    } else if (this.socket === "connecting" && t - this.connectingSince > STALL_TIMEOUT_MS) {
      // a connect that hangs (a host that drops packets): give up on it ourselves, not the browser
      this.#closeSocket(4001, "connect timed out");
      this.#scheduleReconnect("timed out connecting");
    }
  }

  #adaptTier() {
    if (this.connection !== "open") return;
    const want = this.policy.decide({
      nowMs: this.nowMs,
      tier: this.tier,
      spreadMs: this.jitter.spreadMs,
      underruns: this.playout.underruns,
    });
    if (want) {
      this.#event("info", `asking for tier ${want}`);
      this.#requestTier(want);
    }
  }

  #requestTier(tier) {
    if (tier in TIERS) this.#send(bufferControl(tier, this.nowMs));
  }

  #adoptTier(tier) {
    if (!(tier in TIERS) || tier === this.tier) return;
    this.tier = tier;
    this.#toWorklet({ type: "target", ms: TIERS[tier] });
    this.#postStatus();
  }

  // ---- frames ----

  #onBinary(data) {
    try {
      if (this.format === Format.OPUS) this.#onOpus(parseOpusFrame(data));
      else this.#onPcm(parseBinaryFrame(data));
    } catch (err) {
      this.#event("warning", err.message);
    }
  }

  #onText(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.#event("warning", "server sent a text frame that is not JSON");
      return;
    }
    switch (msg.type) {
      case "connection_established": {
        this.connection = "open";
        this.establishedThisConnection = true;
        this.reportBase = { underruns: this.playout.underruns ?? 0, playedMs: this.playout.playedMs ?? 0 };
        this.serverVersion = msg.server_version ?? null;
        const confirmed = msg.buffer_config?.format ?? msg.format;
        if (Object.values(Format).includes(confirmed)) this.format = confirmed;
        this.codec = this.format === Format.OPUS ? (msg.codec ?? null) : null;
        if (msg.buffer_config?.initial_tier) this.#adoptTier(msg.buffer_config.initial_tier);
        if (this.resuming && this.dropped) this.reconnects += 1;
        this.dropped = false;
        this.#postStatus();
        break;
      }
      case "audio":
        try {
          const chunk = parseJsonAudio(msg);
          if (chunk.tier) this.#adoptTier(chunk.tier);
          this.#onPcm(chunk);
        } catch (err) {
          this.#event("warning", `bad audio message: ${err.message}`);
        }
        break;
      case "buffer_status":
        if (msg.buffer_health?.current_tier) this.#adoptTier(msg.buffer_health.current_tier);
        break;
      case "buffer_control_ack":
        this.#adoptTier(msg.new_tier);
        break;
      case "pong":
        if (typeof msg.client_timestamp === "number") this.rttMs = this.nowMs - msg.client_timestamp * 1000;
        break;
      case "shutdown_warning":
        this.#event("warning", `server shutting down (${msg.reason}); it keeps streaming for ${msg.drain_period_sec} s`);
        break;
      case "now_playing": {
        const np = parseNowPlaying(msg);
        if (np) {
          this.nowPlaying.add(np);
          this.#releaseNowPlaying();
        }
        break;
      }
      case "error":
        if (msg.error_code === "INVALID_MESSAGE" && !this.establishedThisConnection) this.formatRefused = true;
        this.lastError = `${msg.error_code}: ${msg.error_message}`;
        this.#event(msg.severity || "error", this.lastError, msg.error_code);
        if (msg.error_code === "UNKNOWN_STATION") this.#fail(this.lastError);
        // the stream skips (a resume point no longer held, or one from before a restart of the
        // system, whose chunk ids start again lower): the next chunk is taken whatever its id
        if (msg.error_code === "BUFFER_OVERRUN") this.skipAnnounced = true;
        break;
      default:
        break; // extensions are welcome
    }
  }

  /** A chunk's bookkeeping: false for a duplicate, which goes no further. */
  #accept({ chunkId, timestamp }) {
    const t = this.nowMs;
    if (this.skipAnnounced) {
      this.skipAnnounced = false;
      if (this.lastChunkId !== null && chunkId > this.lastChunkId + 1) this.gaps += chunkId - this.lastChunkId - 1;
    } else if (this.lastChunkId !== null) {
      if (chunkId <= this.lastChunkId) {
        this.duplicates += 1;
        return false;
      }
      if (chunkId !== this.lastChunkId + 1) this.gaps += chunkId - this.lastChunkId - 1;
    }
    this.jitter.observe(chunkId, timestamp, t);
    this.lastChunkId = chunkId;
    this.chunksReceived += 1;
    this.lastAudioAt = t;
    this.gotAudioThisConnection = true;
    this.binaryFailures = 0;
    return true;
  }

  #onPcm(chunk) {
    if (!this.#accept(chunk)) return;
    const planar = int16ToPlanar(chunk.pcm);
    const message = { type: "chunk", id: chunk.chunkId, pcm: planar, frames: planar.length / 2, rate: SAMPLE_RATE };
    this.#toWorklet(message, [planar.buffer]);
  }

  #onOpus(frame) {
    if (!this.#accept(frame)) return;
    this.#emit({ type: "decode", chunkId: frame.chunkId, packets: frame.packets });
  }

  /** Pass on the latest section the listener hears now: the chunk playing is a buffer behind the last received. */
  #releaseNowPlaying() {
    const playing = this.lastChunkId === null ? null : this.lastChunkId - Math.ceil(this.playout.bufferedMs / CHUNK_MS);
    const np = this.nowPlaying.take(playing);
    if (np) this.#emit({ type: "post", message: { type: "now_playing", nowPlaying: np } });
  }

  // ---- actions ----

  #send(text) {
    if (this.socket === "open") this.#emit({ type: "send", text });
  }

  #event(level, message, code) {
    this.#emit({ type: "post", message: { type: "event", level, message, code: code ?? null, at: this.nowMs } });
  }

  #postStatus() {
    this.#emit({ type: "post", message: this.status() });
  }

  #toWorklet(message, transfer = []) {
    this.#emit({ type: "worklet", message, transfer });
  }

  #emit(action) {
    this.actions.push(action);
  }

  #take() {
    const actions = this.actions;
    this.actions = [];
    return actions;
  }
}
