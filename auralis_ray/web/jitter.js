// Arrival jitter of live chunks. Pure: arrival times are inputs (ms, any monotonic-ish clock that
// ticks like the wall clock), server publish times come from the chunks.
//
// Right after a (re)connect the server sends a burst of buffered chunks at once, then catches up at
// twice real time; their arrival says nothing about the network, so measuring starts at the first
// chunk that arrives at least half a chunk after the one before it and whose transit (arrival less
// publish time) no longer falls by more than a quarter chunk (live pacing). A chunk_id jump does
// the same.

export class JitterTracker {
  /**
   * @param {object} [o]
   * @param {number} [o.chunkMs]
   * @param {number} [o.window] live chunks the delay spread is taken over
   */
  constructor({ chunkMs = 100, window = 100 } = {}) {
    this.chunkMs = chunkMs;
    this.window = window;
    this.transits = [];
    /** RFC 3550 interarrival jitter (ms), smoothed over ~16 chunks */
    this.jitterMs = 0;
    this.samples = 0;
    this.reset();
  }

  /** A new connection: wait for live pacing again. Keeps the smoothed jitter and the window. */
  reset() {
    this.settling = true;
    this.lastId = null;
    this.lastArrivalMs = null;
    this.lastTransitMs = null;
    this.settlingTransitMs = null; // the last transit seen while settling
  }

  /**
   * @param {number} chunkId
   * @param {number} serverTimestampSec the chunk's publish time (Unix seconds)
   * @param {number} arrivalMs when it arrived (ms)
   */
  observe(chunkId, serverTimestampSec, arrivalMs) {
    const consecutive = this.lastId !== null && chunkId === this.lastId + 1;
    const gapMs = this.lastArrivalMs === null ? null : arrivalMs - this.lastArrivalMs;
    this.lastId = chunkId;
    this.lastArrivalMs = arrivalMs;
    const transit = arrivalMs - serverTimestampSec * 1000;
    if (!consecutive) {
      this.settling = true;
      this.lastTransitMs = null;
      this.settlingTransitMs = transit;
      return;
    }
    if (this.settling) {
      const falling = this.settlingTransitMs === null || transit < this.settlingTransitMs - this.chunkMs / 4;
      this.settlingTransitMs = transit;
      if (gapMs < this.chunkMs / 2 || falling) return; // still the burst, or catching up
      this.settling = false;
    }
    if (this.lastTransitMs !== null) {
      const d = Math.abs(transit - this.lastTransitMs);
      this.jitterMs += (d - this.jitterMs) / 16;
    }
    this.lastTransitMs = transit;
    this.transits.push(transit);
    if (this.transits.length > this.window) this.transits.shift();
    this.samples += 1;
  }

  /** Largest minus smallest transit time over the window: how much buffer late chunks eat (ms). */
  get spreadMs() {
    if (this.transits.length < 2) return 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const t of this.transits) {
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    return hi - lo;
  }
}
