// Client-side adaptive tier policy. Pure: `now` and the measurements are inputs, the answer is the
// tier to ask for (or null). The server's tier stays authoritative: the player adopts whatever tier
// the server reports, and asks for a change with `buffer_control` when this policy says so.
//
// - An underrun while playing asks for the next tier up at once.
// - A delay spread that the current target cannot absorb (spread * headroom + margin > target) asks
//   for the smallest tier that can.
// - After a calm period (no underrun, no promotion) with a spread that the lower tier absorbs twice
//   over, it asks for one tier down, never below `floor`. Every promotion caused by an underrun
//   doubles the calm period required (up to `maxCalmMs`), so a flaky network stops oscillating.

import { TIERS, TIER_ORDER } from "./protocol.js";

export class TierPolicy {
  constructor({
    floor = "normal",
    ceiling = "defensive",
    headroom = 1.5,
    marginMs = 250,
    calmMs = 60000,
    maxCalmMs = 600000,
    cooldownMs = 5000,
  } = {}) {
    this.floorIdx = TIER_ORDER.indexOf(floor);
    this.ceilingIdx = TIER_ORDER.indexOf(ceiling);
    if (this.floorIdx < 0 || this.ceilingIdx < this.floorIdx) throw new RangeError(`bad tier range ${floor}..${ceiling}`);
    this.headroom = headroom;
    this.marginMs = marginMs;
    this.calmMs = calmMs;
    this.maxCalmMs = maxCalmMs;
    this.cooldownMs = cooldownMs;
    this.lastUnderruns = null;
    this.lastTroubleMs = null;
    this.lastRequestMs = -Infinity;
    this.lastRequestIdx = -1;
  }

  /** buffer needed to ride out the measured delay spread */
  requiredMs(spreadMs) {
    return spreadMs * this.headroom + this.marginMs;
  }

  /**
   * @param {object} m
   * @param {number} m.nowMs
   * @param {string} m.tier the tier in force
   * @param {number} m.spreadMs JitterTracker.spreadMs
   * @param {number} m.underruns cumulative underruns of the player
   * @returns {string|null} tier to request, or null to keep the current one
   */
  decide({ nowMs, tier, spreadMs, underruns }) {
    if (this.lastTroubleMs === null) this.lastTroubleMs = nowMs;
    if (this.lastUnderruns === null) this.lastUnderruns = underruns;
    const idx = TIER_ORDER.indexOf(tier);
    if (idx < 0) return null;
    const coolingDown = nowMs - this.lastRequestMs < this.cooldownMs;
    const required = this.requiredMs(spreadMs);

    let want = idx;
    if (underruns > this.lastUnderruns) {
      this.lastUnderruns = underruns;
      this.lastTroubleMs = nowMs;
      this.calmMs = Math.min(this.maxCalmMs, this.calmMs * 2);
      want = Math.max(want, idx + 1);
    }
    if (required > TIERS[tier]) {
      this.lastTroubleMs = nowMs;
      const fits = TIER_ORDER.findIndex((t) => TIERS[t] >= required);
      want = Math.max(want, fits < 0 ? TIER_ORDER.length - 1 : fits);
    }
    if (want === idx && idx > this.floorIdx && nowMs - this.lastTroubleMs >= this.calmMs && !coolingDown) {
      const lower = TIER_ORDER[idx - 1];
      if (required * 2 <= TIERS[lower]) want = idx - 1;
    }
    want = Math.min(want, Math.max(idx, this.ceilingIdx)); // never ask past the ceiling
    if (want === idx) return null;
    // While a request is unanswered, do not repeat it before the cooldown.
    if (want === this.lastRequestIdx && coolingDown) return null;
    this.lastRequestMs = nowMs;
    this.lastRequestIdx = want;
    if (want < idx) this.lastTroubleMs = nowMs; // measure a fresh calm period at the new tier
    return TIER_ORDER[want];
  }
}
