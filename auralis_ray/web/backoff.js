// Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"):
// the n-th retry waits a uniformly random time in [0, min(cap, base * 2^n)).
// Randomness is an input so tests are exact.

export class Backoff {
  /**
   * @param {object} [o]
   * @param {number} [o.baseMs] ceiling of the first wait
   * @param {number} [o.capMs] the ceiling never grows past this
   * @param {() => number} [o.random] uniform in [0, 1)
   */
  constructor({ baseMs = 250, capMs = 10000, random = Math.random } = {}) {
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.random = random;
    this.attempt = 0;
  }

  /** the ceiling of the next wait */
  get ceilingMs() {
    return Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
  }

  /** @returns {number} ms to wait before the next try */
  next() {
    const delay = this.random() * this.ceilingMs;
    this.attempt = Math.min(this.attempt + 1, 30);
    return delay;
  }

  /** the connection is healthy again */
  reset() {
    this.attempt = 0;
  }
}
