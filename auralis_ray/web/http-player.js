// HttpStreamPlayer: the phone listening mode. It plays the station's HTTP stream (/listen/{station}.opus,
// Ogg/Opus, or .mp3 where the element does not play Ogg/Opus) through an <audio> element, which a
// phone keeps playing with the screen locked. A stop drops the stream; a pause (the lock screen's, or
// the system's for a call) keeps the element's source, so the system's media controls stay; either
// way the next play opens the stream afresh, at the live edge. A stream that ends or fails (a restart,
// a drain, the network) is opened again with full-jitter backoff, and so is one whose time stops
// moving. It sends "change" events.

import { Backoff } from "./backoff.js";
import { chooseStreamKind, listenStreamUrl, streamLabel } from "./listen-mode.js";
import { StationPlayer } from "./station-player.js";

export const STALL_TIMEOUT_MS = 10000; // playing, but currentTime has not moved: open the stream again
const WATCH_INTERVAL_MS = 1000;
const BITRATE_TIMEOUT_MS = 5000;

export class HttpStreamPlayer extends StationPlayer {
  /**
   * @param {object} o
   * @param {HTMLAudioElement} o.audio the element that plays
   * @param {string} [o.httpBase] the server (default: this page's origin)
   * @param {() => number} [o.now] a monotonic clock in ms
   */
  constructor({ audio, httpBase = location.origin, now = () => performance.now() }) {
    super();
    this.audio = audio;
    this.httpBase = httpBase;
    this.now = now;
    this.kind = chooseStreamKind(audio.canPlayType("audio/ogg; codecs=opus") !== "");
    this.station = "default";
    this.wanted = false;
    this.started = false; // played since the page opened
    this.opening = false; // between setting the source and play()'s answer
    this.elementState = "idle"; // connecting | buffering | playing, from the element's events
    this.reconnects = 0;
    this.lastError = null;
    this.bitrateKbps = null;
    this.bitrateAsked = false;
    this.backoff = new Backoff({ baseMs: 500, capMs: 10000 });
    this.reconnectTimer = null;
    this.watchTimer = null;
    this.lastTime = 0;
    this.lastTimeMovedAt = 0;
    this.fadeTimer = null;
    this.volume = 1;
    for (const [event, handler] of Object.entries({
      playing: () => this.#elementIs("playing"),
      waiting: () => this.#elementIs("buffering"),
      error: () => this.#dropped(this.audio.error?.message || `media error ${this.audio.error?.code ?? ""}`.trim()),
      ended: () => this.#dropped("the stream ended"),
      pause: () => this.#pausedElsewhere(),
      timeupdate: () => this.#changed(),
    })) {
      audio.addEventListener(event, handler);
    }
  }

  /** The stream this player opens for its station. */
  get url() {
    return listenStreamUrl(this.httpBase, this.station, this.kind);
  }

  /** Start listening to `station` (or the current one). Call from a user gesture. */
  async play(station = this.station) {
    this.station = station;
    this.wanted = true;
    this.started = true;
    this.lastError = null;
    clearInterval(this.fadeTimer); // a station change during the sleep timer's fade ends the fade
    this.audio.volume = this.volume;
    this.backoff.reset();
    this.#cancelReconnect();
    this.#watch(true);
    await this.#open();
  }

  /** Stop listening and let go of the stream. */
  stop() {
    this.pause();
    this.#close();
  }

  /** Stop listening, the element keeping its source (the lock screen keeps its controls). */
  pause() {
    this.wanted = false;
    clearInterval(this.fadeTimer);
    this.audio.volume = this.volume;
    this.#cancelReconnect();
    this.#watch(false);
    this.audio.pause();
    this.elementState = "idle";
    this.#changed();
  }

  /** 0..1 (phones may leave the volume to their own buttons) */
  setVolume(v) {
    super.setVolume(v);
    this.audio.volume = this.volume;
  }

  /** Fade to silence over `seconds`, then stop (the sleep timer). */
  fadeOutAndStop(seconds) {
    if (!this.wanted) return this.stop();
    const steps = Math.max(1, Math.round(seconds * 10));
    let step = 0;
    clearInterval(this.fadeTimer);
    this.fadeTimer = setInterval(() => {
      step += 1;
      this.audio.volume = this.volume * Math.max(0, 1 - step / steps);
      if (step >= steps) this.stop();
    }, (seconds * 1000) / steps);
  }

  /** The listener-facing state, as AuralisPlayer names it (a stream that fails is opened again, never given up). */
  get state() {
    if (!this.wanted) return this.started ? "stopped" : "idle";
    if (this.reconnectTimer !== null) return "reconnecting";
    return this.elementState;
  }

  /** For automation and support; what a WebSocket stream has and this one has not is null. */
  stats() {
    const a = this.audio;
    const ahead = a.buffered.length ? a.buffered.end(a.buffered.length - 1) - a.currentTime : 0;
    return {
      state: this.state,
      station: this.station,
      connection: this.wanted ? (this.reconnectTimer !== null ? "reconnecting" : "open") : "closed",
      url: this.url,
      kind: this.kind,
      formatLabel: streamLabel(this.kind, this.bitrateKbps),
      currentTime: a.currentTime,
      bufferedMs: Math.max(0, Math.round(ahead * 1000)),
      reconnects: this.reconnects,
      lastError: this.lastError,
      underruns: null,
      chunksReceived: null,
      tier: null,
      jitterMs: null,
      sampleRate: null,
    };
  }

  async #open() {
    this.elementState = "connecting";
    this.opening = true;
    this.audio.src = this.url; // a fresh request: the server starts it at the live edge
    this.#changed();
    try {
      await this.audio.play();
    } finally {
      this.opening = false;
    }
  }

  #cancelReconnect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  #close() {
    const a = this.audio;
    a.pause();
    a.removeAttribute("src");
    a.load(); // lets go of the connection
  }

  #elementIs(state) {
    this.elementState = state;
    if (state === "playing") {
      this.lastTimeMovedAt = this.now();
      this.#probeBitrate(); // once the stream plays: the question never competes with it
    }
    this.#changed();
  }

  /** The stream failed or ended while wanted: open it again after the backoff delay. */
  #dropped(why) {
    if (!this.wanted || this.reconnectTimer !== null) return; // one reopen at a time
    this.lastError = why;
    const delayMs = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.reconnects += 1;
      this.#open().catch((err) => {
        if (err.name !== "AbortError") this.#dropped(err.message); // AbortError: a newer source took over
      });
    }, delayMs);
    this.#changed();
  }

  /** Something else paused the element (a call, another app's audio): the listener has paused. */
  #pausedElsewhere() {
    // A live stream that ends pauses first; that one is opened again.
    if (this.wanted && !this.opening && this.reconnectTimer === null && !this.audio.ended) this.pause();
  }

  /** While wanted: a stream whose time stops moving is opened again; one that keeps moving resets the backoff. */
  #watch(running) {
    clearInterval(this.watchTimer);
    this.watchTimer = null;
    if (!running) return;
    this.lastTimeMovedAt = this.now();
    this.watchTimer = setInterval(() => {
      const t = this.audio.currentTime;
      const nowMs = this.now();
      if (t !== this.lastTime) {
        this.lastTime = t;
        this.lastTimeMovedAt = nowMs;
        if (this.elementState === "playing") this.backoff.reset();
      } else if (this.reconnectTimer === null && nowMs - this.lastTimeMovedAt > STALL_TIMEOUT_MS) {
        this.lastTimeMovedAt = nowMs;
        this.#dropped("the stream stalled");
      }
      this.#changed();
    }, WATCH_INTERVAL_MS);
  }

  /** The stream's bitrate from its `icy-br` header (kbit/s), where the server sends one; asked once. */
  async #probeBitrate() {
    if (this.bitrateAsked) return;
    this.bitrateAsked = true;
    try {
      const res = await fetch(this.url, { method: "HEAD", cache: "no-store", signal: AbortSignal.timeout(BITRATE_TIMEOUT_MS) });
      const kbps = Number(res.headers.get("icy-br"));
      if (res.ok && kbps > 0) this.bitrateKbps = kbps;
    } catch {
      /* the label goes without a bitrate */
    }
  }

  #changed() {
    this.dispatchEvent(new Event("change"));
  }
}
