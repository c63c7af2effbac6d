// AuralisPlayer: the main-thread side of the player. It builds the audio graph
// (AudioWorklet -> gain -> analyser -> speakers), starts the stream worker, wires the two together
// with a MessageChannel so audio never crosses the main thread, and keeps the latest stats. It sends
// "change" events, "event" events (the stream's notices) and "nowplaying" events (detail: what the
// listener hears now, now-playing.js parseNowPlaying's shape).

import { AUTO_FORMAT, formatLabel } from "./formats.js";
import { SAMPLE_RATE, TIERS, websocketBase } from "./protocol.js";
import { StationPlayer } from "./station-player.js";

const STATIC_BASE = new URL(".", import.meta.url); // wherever this module was served from

export class AuralisPlayer extends StationPlayer {
  /**
   * @param {object} [o]
   * @param {string} [o.httpBase] the server (default: this page's origin)
   * @param {string} [o.wsBase] its WebSocket origin (default: derived from httpBase)
   * @param {string} [o.format] "auto" (default: Opus where the browser decodes it, binary PCM otherwise), "opus", "binary" or "json"
   * @param {string} [o.tier] initial buffer tier
   * @param {string} [o.tierFloor] lowest tier the adaptive policy asks for
   * @param {number} [o.sampleRate] force the AudioContext's rate (testing/support); default: the device's own
   */
  constructor({ httpBase = location.origin, wsBase, format = AUTO_FORMAT, tier = "normal", tierFloor = "normal", sampleRate } = {}) {
    super();
    this.httpBase = httpBase;
    this.wsBase = wsBase ?? websocketBase(httpBase);
    this.format = format;
    this.initialTier = tier in TIERS ? tier : "normal";
    this.tierFloor = tierFloor in TIERS ? tierFloor : "normal";
    this.forcedSampleRate = sampleRate > 0 ? sampleRate : undefined;
    this.clientId = newClientId();
    this.station = "default";
    this.wanted = false;
    this.ctx = null;
    this.node = null;
    this.gain = null;
    this.analyser = null;
    this.worker = null;
    this.volume = 0.8;
    this.playout = { state: "idle", bufferedMs: 0, underruns: 0, playedMs: 0, targetMs: TIERS[this.initialTier] };
    this.stream = { connection: "closed", tier: this.initialTier, jitterMs: 0, chunksReceived: 0, reconnects: 0, gaps: 0 };
    this.failed = false;
    this.graphReady = null; // the audio graph, once asked for (a promise)
    this.fadeTimer = undefined; // the sleep timer's stop, while it fades
  }

  /** Build the audio graph once (needs a user gesture in most browsers); a second call while the
   * first builds waits for the same graph. */
  #ensureGraph() {
    this.graphReady ??= this.#buildGraph().catch((error) => {
      this.graphReady = null; // a later play tries again
      throw error;
    });
    return this.graphReady;
  }

  async #buildGraph() {
    // Normally no sampleRate option: the context runs at the device's own rate and the worklet resamples.
    const ctx = new AudioContext({ latencyHint: "playback", sampleRate: this.forcedSampleRate });
    await ctx.audioWorklet.addModule(new URL("worklet.js", STATIC_BASE));
    const node = new AudioWorkletNode(ctx, "auralis-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: { inRate: SAMPLE_RATE, targetMs: TIERS[this.initialTier] },
    });
    const gain = ctx.createGain();
    gain.gain.value = this.volume;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    analyser.smoothingTimeConstant = 0.8;
    node.connect(gain).connect(analyser).connect(ctx.destination);

    const worker = new Worker(new URL("stream-worker.js", STATIC_BASE), { type: "module", name: "auralis-stream" });
    const channel = new MessageChannel();
    node.port.postMessage({ type: "stream-port" }, [channel.port2]);
    worker.postMessage({ cmd: "init" }, [channel.port1]);
    node.port.onmessage = (e) => {
      if (e.data.type === "playout") {
        this.playout = e.data;
        this.#changed();
      }
    };
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.type === "status") {
        this.stream = m;
        if (m.connection === "failed") this.failed = true;
        this.#changed();
      } else if (m.type === "event") {
        this.dispatchEvent(new CustomEvent("event", { detail: m }));
      } else if (m.type === "now_playing") {
        this.dispatchEvent(new CustomEvent("nowplaying", { detail: m.nowPlaying }));
      }
    };
    worker.onerror = (e) => {
      this.dispatchEvent(new CustomEvent("event", { detail: { level: "error", message: `stream worker: ${e.message}` } }));
    };
    Object.assign(this, { ctx, node, gain, analyser, worker });
  }

  /** Start listening to `station` (or the current one). Call from a user gesture. */
  async play(station = this.station) {
    this.station = station;
    this.wanted = true;
    this.failed = false;
    this.#cancelFade();
    await this.#ensureGraph();
    if (this.ctx.state !== "running") await this.ctx.resume();
    if (!this.wanted || this.station !== station) return; // stopped, or another station asked for, meanwhile
    this.worker.postMessage({
      cmd: "start",
      config: {
        wsBase: this.wsBase,
        clientId: this.clientId,
        station: this.station,
        tier: this.stream.tier in TIERS ? this.stream.tier : this.initialTier,
        tierFloor: this.tierFloor,
        format: this.format,
      },
    });
    this.#changed();
  }

  stop() {
    this.wanted = false;
    this.#cancelFade();
    if (this.worker) this.worker.postMessage({ cmd: "stop" });
    this.#changed();
  }

  /** A sleep timer's fade ends here: no stop comes later, and the volume is back. */
  #cancelFade() {
    if (this.fadeTimer === undefined) return;
    clearTimeout(this.fadeTimer);
    this.fadeTimer = undefined;
    const t = this.ctx.currentTime;
    this.gain.gain.cancelScheduledValues(t);
    this.gain.gain.setValueAtTime(this.volume, t);
  }

  /** 0..1, smoothed so it never clicks */
  setVolume(v) {
    super.setVolume(v);
    if (this.gain) this.gain.gain.setTargetAtTime(this.volume, this.ctx.currentTime, 0.05);
  }

  /** Fade to silence over `seconds`, then stop (the sleep timer). */
  fadeOutAndStop(seconds) {
    if (!this.gain || !this.wanted) return this.stop();
    const t = this.ctx.currentTime;
    this.gain.gain.cancelScheduledValues(t);
    this.gain.gain.setValueAtTime(this.gain.gain.value, t);
    this.gain.gain.linearRampToValueAtTime(0, t + seconds);
    this.fadeTimer = setTimeout(() => this.stop(), seconds * 1000); // stop() puts the volume back
  }

  /** Ask the server for a buffer tier (the adaptive policy does this on its own). */
  requestTier(tier) {
    if (this.worker) this.worker.postMessage({ cmd: "tier", tier });
  }

  /** The listener-facing state. "playing" while audio plays (also while reconnecting on a full buffer). */
  get state() {
    if (this.failed) return "error";
    if (!this.wanted) return this.ctx ? "stopped" : "idle";
    if (this.playout.state === "playing") return "playing";
    const c = this.stream.connection;
    if (c === "reconnecting") return "reconnecting";
    if (c === "connecting" || c === "closed") return "connecting";
    return "buffering";
  }

  /** For automation and support. */
  stats() {
    return {
      state: this.state,
      underruns: this.playout.underruns,
      bufferedMs: Math.round(this.playout.bufferedMs),
      chunksReceived: this.stream.chunksReceived,
      tier: this.stream.tier,
      sampleRate: this.ctx ? this.ctx.sampleRate : null,
      reconnects: this.stream.reconnects,
      // extensions
      clientId: this.clientId,
      station: this.station,
      connection: this.stream.connection,
      targetMs: this.playout.targetMs,
      jitterMs: Math.round((this.stream.jitterMs ?? 0) * 10) / 10,
      lastChunkId: this.stream.lastChunkId ?? null,
      gaps: this.stream.gaps,
      format: this.stream.format ?? this.format,
      formatLabel: this.stream.format ? formatLabel(this.stream.format, this.stream.codec) : "–",
      codec: this.stream.codec ?? null,
      driftPpm: Math.round(this.playout.driftPpm ?? 0),
      rttMs: this.stream.rttMs == null ? null : Math.round(this.stream.rttMs),
      lastError: this.stream.lastError ?? null,
    };
  }

  #changed() {
    this.dispatchEvent(new Event("change"));
  }
}

/** A client_id the protocol accepts: 1-64 of [A-Za-z0-9_-]. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return `web-${crypto.randomUUID()}`;
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
