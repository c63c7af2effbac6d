// A planar float ring buffer of audio frames. Pure: no clock, no I/O.
// Indices are absolute frame counters (Numbers stay exact far beyond any stream's lifetime);
// the storage position is the counter modulo the capacity.

export class RingBuffer {
  /**
   * @param {number} capacityFrames most frames held at once
   * @param {number} channels planes (2 for stereo)
   */
  constructor(capacityFrames, channels = 2) {
    if (!Number.isInteger(capacityFrames) || capacityFrames < 1) {
      throw new RangeError(`capacityFrames must be a positive integer, got ${capacityFrames}`);
    }
    this.capacity = capacityFrames;
    this.channels = channels;
    this.planes = Array.from({ length: channels }, () => new Float32Array(capacityFrames));
    this.readIndex = 0;
    this.writeIndex = 0;
    /** frames dropped because a write did not fit (oldest audio goes first) */
    this.droppedFrames = 0;
  }

  /** frames ready to read */
  get available() {
    return this.writeIndex - this.readIndex;
  }

  /** frames that can be written without dropping old audio */
  get free() {
    return this.capacity - this.available;
  }

  /**
   * Append frames. `source` is one plane per channel, or one Float32Array holding the planes
   * back to back (`[L0..Ln-1, R0..Rn-1]`). When the data does not fit, the oldest frames are dropped.
   * @returns {number} frames dropped by this write
   */
  write(source, frames) {
    const planes = Array.isArray(source) ? source : splitPlanes(source, this.channels);
    let count = frames ?? planes[0].length;
    let start = 0;
    let dropped = 0;
    if (count > this.capacity) {
      // Only the newest `capacity` frames of this write can survive.
      start = count - this.capacity;
      dropped += start;
      count = this.capacity;
    }
    const overflow = count - this.free;
    if (overflow > 0) {
      this.readIndex += overflow;
      dropped += overflow;
    }
    const at = this.writeIndex % this.capacity;
    const first = Math.min(count, this.capacity - at);
    for (let c = 0; c < this.channels; c++) {
      const src = planes[c];
      const dst = this.planes[c];
      dst.set(src.subarray(start, start + first), at);
      if (first < count) dst.set(src.subarray(start + first, start + count), 0);
    }
    this.writeIndex += count;
    this.droppedFrames += dropped;
    return dropped;
  }

  /**
   * Copy up to `frames` frames into `out` (one plane per channel) at `offset` and consume them.
   * @returns {number} frames read
   */
  read(out, frames, offset = 0) {
    const count = Math.min(frames, this.available);
    const at = this.readIndex % this.capacity;
    const first = Math.min(count, this.capacity - at);
    for (let c = 0; c < this.channels; c++) {
      const src = this.planes[c];
      out[c].set(src.subarray(at, at + first), offset);
      if (first < count) out[c].set(src.subarray(0, count - first), offset + first);
    }
    this.readIndex += count;
    return count;
  }

  /**
   * Consume one frame into `frame` (length >= channels). Used by the resampler, one input frame at a time.
   * @returns {boolean} false when the buffer is empty
   */
  shift(frame) {
    if (this.writeIndex === this.readIndex) return false;
    const at = this.readIndex % this.capacity;
    for (let c = 0; c < this.channels; c++) frame[c] = this.planes[c][at];
    this.readIndex += 1;
    return true;
  }

  /** Drop up to `frames` of the oldest frames. @returns {number} frames dropped */
  skip(frames) {
    const count = Math.min(frames, this.available);
    this.readIndex += count;
    return count;
  }

  /** Forget everything buffered (a station switch). */
  clear() {
    this.readIndex = this.writeIndex;
  }
}

/** View a back-to-back planar Float32Array as one subarray per channel. */
export function splitPlanes(flat, channels) {
  const frames = flat.length / channels;
  return Array.from({ length: channels }, (_, c) => flat.subarray(c * frames, (c + 1) * frames));
}
