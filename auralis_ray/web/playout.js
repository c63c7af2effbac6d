// The playout state machine the AudioWorklet runs: ring buffer at the stream's rate, resampled on
// the way out, prebuffer to the tier target, underrun detection and rebuffering, and a gentle
// clock-drift correction. Pure: it is driven by push() and render(); time is counted in frames.

import { RingBuffer } from "./ring-buffer.js";
import { Resampler } from "./resampler.js";

export const PlayoutState = Object.freeze({
  IDLE: "idle", // not playing: outputs silence, counts nothing
  BUFFERING: "buffering", // filling up to the target before (re)starting
  PLAYING: "playing",
});

export class Playout {
  /**
   * @param {object} o
   * @param {number} o.outRate the AudioContext's sample rate
   * @param {number} [o.inRate] the stream's sample rate
   * @param {number} [o.channels]
   * @param {number} [o.targetMs] prebuffer target (the tier's)
   * @param {number} [o.capacityMs] most audio held; older audio is dropped beyond it
   * @param {number} [o.chunkMs] the stream's chunk length: the buffer level is a sawtooth of this height
   * @param {number} [o.maxDriftPpm] most playback-rate correction applied
   * @param {number} [o.driftDeadband] no correction while the mean level is within this fraction of the target
   * @param {number} [o.driftFullScale] beyond the deadband, this fraction of the target gives the full correction
   * @param {number} [o.levelTimeConstantSec] smoothing of the level the drift correction looks at
   */
  constructor({
    outRate,
    inRate = 44100,
    channels = 2,
    targetMs = 1000,
    capacityMs = 20000,
    chunkMs = 100,
    maxDriftPpm = 2000,
    driftDeadband = 0.1,
    driftFullScale = 0.3,
    levelTimeConstantSec = 2,
  }) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.channels = channels;
    this.capacityMs = capacityMs;
    this.ring = new RingBuffer(Math.round((capacityMs / 1000) * inRate), channels);
    this.resampler = new Resampler(inRate, outRate, channels);
    this.playedMsBefore = 0; // what earlier input rates played
    this.chunkMs = chunkMs;
    this.maxDriftPpm = maxDriftPpm;
    this.driftDeadband = driftDeadband;
    this.driftFullScale = driftFullScale;
    this.levelTimeConstantSec = levelTimeConstantSec;
    this.state = PlayoutState.IDLE;
    this.targetMs = targetMs;
    this.underruns = 0;
    this.outputFrames = 0; // frames rendered while playing
    this.meanLevelMs = null;
  }

  /** input frames per millisecond */
  get framesPerMs() {
    return this.inRate / 1000;
  }

  get bufferedMs() {
    return this.ring.available / this.framesPerMs;
  }

  /** input frames played so far at the current input rate (the resampler's consumption) */
  get playedFrames() {
    return this.resampler.consumed;
  }

  /** ms of the stream played so far, whatever its input rates were */
  get playedMs() {
    return this.playedMsBefore + this.playedFrames / this.framesPerMs;
  }

  /**
   * The stream's rate changes (44.1 kHz PCM, 48 kHz Opus): what is buffered at the old rate is
   * dropped, and playback buffers up to the target again.
   */
  setInRate(inRate) {
    if (inRate === this.inRate) return;
    this.playedMsBefore = this.playedMs;
    const dropped = this.ring.droppedFrames;
    this.inRate = inRate;
    this.ring = new RingBuffer(Math.round((this.capacityMs / 1000) * inRate), this.channels);
    this.ring.droppedFrames = dropped;
    const ppm = this.resampler.ppm;
    this.resampler = new Resampler(inRate, this.outRate, this.channels);
    this.resampler.setRateAdjustPpm(ppm);
    this.meanLevelMs = null;
    if (this.state === PlayoutState.PLAYING) this.state = PlayoutState.BUFFERING;
  }

  /** Start (or keep) listening: buffer up to the target, then play. */
  start() {
    if (this.state === PlayoutState.IDLE) this.state = PlayoutState.BUFFERING;
  }

  /** Stop: silence, drop what is buffered. */
  stop() {
    this.state = PlayoutState.IDLE;
    this.flush();
  }

  /** Drop what is buffered and the resampler's history (a station switch). */
  flush() {
    this.ring.clear();
    this.resampler.reset();
    this.meanLevelMs = null;
    if (this.state === PlayoutState.PLAYING) this.state = PlayoutState.BUFFERING;
  }

  setTargetMs(ms) {
    this.targetMs = ms;
  }

  /** Append decoded audio (planes, or planes back to back in one Float32Array). */
  push(source, frames) {
    return this.ring.write(source, frames);
  }

  /**
   * Fill `out` (one Float32Array per channel, `frames` long) with the next output block.
   * @returns {boolean} true when an underrun started in this block
   */
  render(out, frames) {
    if (this.state === PlayoutState.BUFFERING && this.bufferedMs >= this.targetMs) {
      this.state = PlayoutState.PLAYING;
    }
    if (this.state !== PlayoutState.PLAYING) {
      for (const plane of out) plane.fill(0, 0, frames);
      return false;
    }
    this.#correctDrift(frames);
    const produced = this.resampler.process(this.ring, out, frames);
    this.outputFrames += produced;
    if (produced < frames) {
      for (const plane of out) plane.fill(0, produced, frames);
      this.underruns += 1;
      this.state = PlayoutState.BUFFERING;
      this.meanLevelMs = null;
      return true;
    }
    return false;
  }

  /**
   * Keep the mean buffer level near the target whatever the two clocks do: play up to
   * `maxDriftPpm` faster when the level sits above the target band, slower below it.
   */
  #correctDrift(frames) {
    // The level is a sawtooth between target and target - one chunk; its mean plus half a chunk
    // is what we compare with the target.
    const level = this.bufferedMs + this.chunkMs / 2;
    const alpha = Math.min(1, frames / (this.outRate * this.levelTimeConstantSec));
    this.meanLevelMs = this.meanLevelMs === null ? level : this.meanLevelMs + alpha * (level - this.meanLevelMs);
    const rel = (this.meanLevelMs - this.targetMs) / this.targetMs;
    const excess = Math.sign(rel) * Math.max(0, Math.abs(rel) - this.driftDeadband);
    const ppm = Math.max(-1, Math.min(1, excess / this.driftFullScale)) * this.maxDriftPpm;
    if (ppm !== this.resampler.ppm) this.resampler.setRateAdjustPpm(ppm);
  }
}
