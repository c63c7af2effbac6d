import { test } from "node:test";
import assert from "node:assert/strict";
import { RingBuffer } from "../../auralis_ray/web/ring-buffer.js";
import { Resampler, hermite } from "../../auralis_ray/web/resampler.js";

const DELAY = 3; // input frames of latency: output at position p interpolates input p - 3

function sineSource(freq, rate, frames, channels = 2) {
  const rb = new RingBuffer(frames + 16, channels);
  const planes = Array.from({ length: channels }, (_, c) =>
    Float32Array.from({ length: frames }, (_, i) => Math.sin((2 * Math.PI * freq * i) / rate + c)),
  );
  rb.write(planes);
  return rb;
}

function run(rs, src, total, block) {
  const out = [new Float32Array(total), new Float32Array(total)];
  let done = 0;
  while (done < total) {
    const n = Math.min(block, total - done);
    const got = rs.process(src, out, n, done);
    done += got;
    if (got < n) break;
  }
  return { out, done };
}

test("hermite passes through its middle points and is exact on straight lines", () => {
  assert.equal(hermite(0, 1, 2, 3, 0), 1);
  assert.equal(hermite(0, 1, 2, 3, 1), 2);
  assert.ok(Math.abs(hermite(0, 1, 2, 3, 0.25) - 1.25) < 1e-12);
  assert.ok(Math.abs(hermite(5, -1, 7, 2, 0) - -1) < 1e-12);
});

test("equal rates pass samples through unchanged (after the fixed 3-frame delay)", () => {
  const src = sineSource(1000, 44100, 2000);
  const rs = new Resampler(44100, 44100);
  const { out } = run(rs, src, 1500, 128);
  for (let i = DELAY; i < 1500; i++) {
    assert.ok(Math.abs(out[0][i] - Math.sin((2 * Math.PI * 1000 * (i - DELAY)) / 44100)) < 1e-6, `frame ${i}`);
  }
});

for (const outRate of [48000, 96000, 32000, 22050]) {
  test(`44.1 kHz -> ${outRate} Hz keeps pitch and shape of a 1 kHz sine (both channels)`, () => {
    const inRate = 44100;
    const src = sineSource(1000, inRate, 44100);
    const rs = new Resampler(inRate, outRate);
    const total = Math.floor(outRate * 0.9);
    const { out, done } = run(rs, src, total, 128);
    assert.equal(done, total);
    let maxErr = 0;
    for (let i = 16; i < total; i++) {
      const tIn = (i * inRate) / outRate - DELAY; // the input instant this output sample represents
      for (let c = 0; c < 2; c++) {
        const want = Math.sin((2 * Math.PI * 1000 * tIn) / inRate + c);
        maxErr = Math.max(maxErr, Math.abs(out[c][i] - want));
      }
    }
    // cubic interpolation of a 1 kHz tone sampled at 44.1 kHz: error well under -50 dB
    assert.ok(maxErr < 3e-3, `max error ${maxErr}`);
  });
}

test("output does not depend on the block size (state carried across calls)", () => {
  const a = run(new Resampler(44100, 48000), sineSource(440, 44100, 10000), 9000, 128).out;
  const b = run(new Resampler(44100, 48000), sineSource(440, 44100, 10000), 9000, 7).out;
  const c = run(new Resampler(44100, 48000), sineSource(440, 44100, 10000), 9000, 9000).out;
  assert.deepEqual(a[0], b[0]);
  assert.deepEqual(a[1], c[1]);
});

test("consumes input at inRate/outRate per output frame", () => {
  const rs = new Resampler(44100, 48000);
  const src = sineSource(440, 44100, 50000);
  run(rs, src, 48000, 128);
  assert.ok(Math.abs(rs.consumed - 44100) <= 2, `consumed ${rs.consumed}`);
});

test("stops exactly where the input runs dry and continues seamlessly when more arrives", () => {
  const inRate = 44100;
  const outRate = 48000;
  const all = Float32Array.from({ length: 20000 }, (_, i) => Math.sin((2 * Math.PI * 300 * i) / inRate));
  const ref = new RingBuffer(30000);
  ref.write([all, all]);
  const whole = run(new Resampler(inRate, outRate), ref, 20000, 128).out[0];

  const rb = new RingBuffer(30000);
  const rs = new Resampler(inRate, outRate);
  const out = [new Float32Array(20000), new Float32Array(20000)];
  let done = 0;
  for (let fed = 0; fed < 20000; fed += 4410) {
    const piece = all.subarray(fed, Math.min(20000, fed + 4410));
    rb.write([piece, piece]);
    for (;;) {
      const got = rs.process(rb, out, 128, done);
      done += got;
      if (got < 128) break;
    }
  }
  assert.ok(done > 21000);
  for (let i = 0; i < done; i++) assert.equal(out[0][i], whole[i], `frame ${i}`);
});

test("rate adjustment in ppm changes consumption by that fraction", () => {
  const rs = new Resampler(44100, 44100);
  rs.setRateAdjustPpm(1000); // 0.1 % faster
  const src = sineSource(440, 44100, 60000);
  run(rs, src, 44100, 128);
  assert.ok(Math.abs(rs.consumed - 44144) <= 2, `consumed ${rs.consumed}`);
  rs.reset();
  assert.equal(rs.pos, 0);
});
