// Streaming cubic (Catmull-Rom / Hermite) interpolating resampler. Pure: no clock, no I/O.
// It pulls input frames one at a time from a source with `shift(frame) -> boolean`
// (the RingBuffer) and writes output frames at the output rate. The fractional read
// position and the last four input frames are carried from one call to the next, so
// block boundaries are inaudible and the output does not depend on the block size.

export class Resampler {
  /**
   * @param {number} inRate input sample rate (44,100 for Auralis)
   * @param {number} outRate output sample rate (the AudioContext's)
   * @param {number} channels
   */
  constructor(inRate, outRate, channels = 2) {
    if (!(inRate > 0) || !(outRate > 0)) throw new RangeError("sample rates must be positive");
    this.inRate = inRate;
    this.outRate = outRate;
    this.channels = channels;
    /** input frames advanced per output frame, before any drift correction */
    this.baseStep = inRate / outRate;
    this.step = this.baseStep;
    this.ppm = 0;
    // history[c] = [x(-1), x(0), x(1), x(2)]; output is interpolated between x(0) and x(1)
    this.history = Array.from({ length: channels }, () => new Float64Array(4));
    this.frame = new Float32Array(channels);
    this.pos = 0; // fractional position in [0, 1) between x(0) and x(1) (may reach >= 1 lazily)
    /** input frames consumed so far */
    this.consumed = 0;
  }

  /**
   * Play slightly faster (ppm > 0) or slower (ppm < 0) than nominal: drift correction between
   * the server's clock and the sound card's. A few hundred ppm is far below audible pitch change.
   */
  setRateAdjustPpm(ppm) {
    this.ppm = ppm;
    this.step = this.baseStep * (1 + ppm * 1e-6);
  }

  /** Forget the history (a station switch): the next output starts from silence. */
  reset() {
    for (const h of this.history) h.fill(0);
    this.pos = 0;
  }

  /**
   * Produce up to `frames` output frames into `out` (one plane per channel) from `offset`.
   * Stops early when the source runs dry; the position is kept so the next call continues exactly.
   * @returns {number} frames produced
   */
  process(source, out, frames, offset = 0) {
    const { history, frame, channels } = this;
    let pos = this.pos;
    const step = this.step;
    for (let i = 0; i < frames; i++) {
      while (pos >= 1) {
        if (!source.shift(frame)) {
          this.pos = pos;
          return i;
        }
        for (let c = 0; c < channels; c++) {
          const h = history[c];
          h[0] = h[1];
          h[1] = h[2];
          h[2] = h[3];
          h[3] = frame[c];
        }
        this.consumed += 1;
        pos -= 1;
      }
      for (let c = 0; c < channels; c++) {
        const h = history[c];
        out[c][offset + i] = hermite(h[0], h[1], h[2], h[3], pos);
      }
      pos += step;
    }
    this.pos = pos;
    return frames;
  }
}

/** Catmull-Rom cubic through x0..x3, evaluated at t in [0, 1] between x1 and x2. */
export function hermite(xm1, x0, x1, x2, t) {
  const c1 = 0.5 * (x1 - xm1);
  const c2 = xm1 - 2.5 * x0 + 2 * x1 - 0.5 * x2;
  const c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1);
  return ((c3 * t + c2) * t + c1) * t + x0;
}
