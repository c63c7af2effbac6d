import { test } from "node:test";
import assert from "node:assert/strict";
import { RingBuffer, splitPlanes } from "../../auralis_ray/web/ring-buffer.js";

const ramp = (start, n) => Float32Array.from({ length: n }, (_, i) => start + i);
const planes = (start, n) => [ramp(start, n), ramp(-start - 1000, n)];
const readAll = (rb, n) => {
  const out = [new Float32Array(n), new Float32Array(n)];
  const got = rb.read(out, n);
  return { got, out };
};

test("write then read returns the frames in order, per channel", () => {
  const rb = new RingBuffer(8);
  rb.write(planes(0, 5));
  assert.equal(rb.available, 5);
  assert.equal(rb.free, 3);
  const { got, out } = readAll(rb, 5);
  assert.equal(got, 5);
  assert.deepEqual(Array.from(out[0]), [0, 1, 2, 3, 4]);
  assert.deepEqual(Array.from(out[1]), [-1000, -999, -998, -997, -996]);
  assert.equal(rb.available, 0);
});

test("wraps around the end of storage without losing or reordering frames", () => {
  const rb = new RingBuffer(8);
  rb.write(planes(0, 6));
  readAll(rb, 5); // read index at 5
  rb.write(planes(6, 6)); // storage wraps
  assert.equal(rb.available, 7);
  const { got, out } = readAll(rb, 7);
  assert.equal(got, 7);
  assert.deepEqual(Array.from(out[0]), [5, 6, 7, 8, 9, 10, 11]);
});

test("reading more than available reads what there is", () => {
  const rb = new RingBuffer(8);
  rb.write(planes(0, 3));
  const { got, out } = readAll(rb, 6);
  assert.equal(got, 3);
  assert.deepEqual(Array.from(out[0]), [0, 1, 2, 0, 0, 0]);
});

test("overflow drops the oldest frames and counts them", () => {
  const rb = new RingBuffer(8);
  rb.write(planes(0, 6));
  const dropped = rb.write(planes(6, 5));
  assert.equal(dropped, 3);
  assert.equal(rb.droppedFrames, 3);
  assert.equal(rb.available, 8);
  assert.deepEqual(Array.from(readAll(rb, 8).out[0]), [3, 4, 5, 6, 7, 8, 9, 10]);
});

test("a write larger than the capacity keeps only its newest frames", () => {
  const rb = new RingBuffer(4);
  rb.write(planes(0, 2));
  rb.write(planes(100, 10));
  assert.equal(rb.available, 4);
  assert.equal(rb.droppedFrames, 8);
  assert.deepEqual(Array.from(readAll(rb, 4).out[0]), [106, 107, 108, 109]);
});

test("accepts planes back to back in one Float32Array (the worker's transfer format)", () => {
  const rb = new RingBuffer(16);
  const flat = Float32Array.from([1, 2, 3, 10, 20, 30]);
  assert.deepEqual(splitPlanes(flat, 2).map((p) => Array.from(p)), [[1, 2, 3], [10, 20, 30]]);
  rb.write(flat, 3);
  const { out } = readAll(rb, 3);
  assert.deepEqual(Array.from(out[0]), [1, 2, 3]);
  assert.deepEqual(Array.from(out[1]), [10, 20, 30]);
});

test("shift consumes one frame at a time and reports emptiness", () => {
  const rb = new RingBuffer(3);
  rb.write(planes(0, 3));
  rb.skip(1);
  rb.write(planes(3, 1)); // wraps
  const frame = new Float32Array(2);
  const seen = [];
  while (rb.shift(frame)) seen.push([frame[0], frame[1]]);
  assert.deepEqual(seen, [[1, -999], [2, -998], [3, -1003]]);
  assert.equal(rb.shift(frame), false);
});

test("clear forgets buffered audio; long streams keep exact indices", () => {
  const rb = new RingBuffer(4410 * 10);
  const chunk = planes(0, 4410);
  for (let i = 0; i < 1000; i++) {
    rb.write(chunk);
    rb.skip(4410);
  }
  assert.equal(rb.available, 0);
  assert.equal(rb.readIndex, 4410 * 1000);
  rb.write(chunk);
  rb.clear();
  assert.equal(rb.available, 0);
  assert.throws(() => new RingBuffer(0), RangeError);
});
