import { test } from "node:test";
import assert from "node:assert/strict";
import { Playout } from "../../auralis_ray/web/playout.js";

const CHUNK = 4410;
const OPUS_CHUNK = 4800; // 100 ms at 48 kHz
const chunk = (v = 0.25, frames = CHUNK) => {
  const flat = new Float32Array(frames * 2);
  flat.fill(v);
  return flat;
};
const block = () => [new Float32Array(128), new Float32Array(128)];

/** Simulate `seconds` of a real-time stream: one chunk per 100 ms, 128-frame render quanta. */
function simulate(p, seconds, { outRate, deliver = () => true, frames = CHUNK }) {
  const out = block();
  const blocks = Math.round((seconds * outRate) / 128);
  let nextChunkAt = 0;
  let t = 0;
  let underruns = 0;
  for (let b = 0; b < blocks; b++) {
    while (nextChunkAt <= t) {
      if (deliver(nextChunkAt)) p.push(chunk(0.25, frames), frames);
      nextChunkAt += 0.1;
    }
    if (p.render(out, 128)) underruns++;
    t += 128 / outRate;
  }
  return underruns;
}

test("stays silent until the target is buffered, then plays", () => {
  const p = new Playout({ outRate: 48000, targetMs: 500 });
  const out = block();
  p.start();
  for (let i = 0; i < 4; i++) p.push(chunk(), CHUNK);
  assert.equal(p.render(out, 128), false);
  assert.equal(p.state, "buffering");
  assert.ok(out[0].every((v) => v === 0));
  p.push(chunk(), CHUNK);
  p.render(out, 128);
  assert.equal(p.state, "playing");
  assert.ok(Math.abs(p.bufferedMs - 500) < 5);
});

test("idle outputs silence and counts nothing even when empty", () => {
  const p = new Playout({ outRate: 44100 });
  const out = block();
  for (let i = 0; i < 100; i++) assert.equal(p.render(out, 128), false);
  assert.equal(p.underruns, 0);
  assert.equal(p.state, "idle");
});

test("an empty buffer while playing is one underrun, then it rebuffers to the target", () => {
  const p = new Playout({ outRate: 44100, targetMs: 200 });
  const out = block();
  p.start();
  p.push(chunk(), CHUNK);
  p.push(chunk(), CHUNK);
  let underrunAt = -1;
  for (let i = 0; i < 100 && underrunAt < 0; i++) if (p.render(out, 128)) underrunAt = i;
  assert.ok(underrunAt > 60, `underrun at block ${underrunAt}`);
  assert.equal(p.underruns, 1);
  assert.equal(p.state, "buffering");
  for (let i = 0; i < 10; i++) p.render(out, 128); // still empty: not counted again
  assert.equal(p.underruns, 1);
  p.push(chunk(), CHUNK);
  p.push(chunk(), CHUNK);
  p.render(out, 128);
  assert.equal(p.state, "playing");
  assert.ok(out[0].slice(8).every((v) => Math.abs(v - 0.25) < 1e-6));
});

for (const outRate of [44100, 48000, 96000]) {
  test(`a steady stream at ${outRate} Hz plays for 10 minutes with no underrun and a stable level`, () => {
    const p = new Playout({ outRate, targetMs: 1000 });
    for (let i = 0; i < 10; i++) p.push(chunk(), CHUNK); // the server's initial burst
    p.start();
    const underruns = simulate(p, 600, { outRate });
    assert.equal(underruns, 0);
    assert.equal(p.state, "playing");
    assert.ok(p.bufferedMs > 800 && p.bufferedMs <= 1100, `level ${p.bufferedMs}`);
  });
}

test("drift correction holds the level when the sound card runs 0.1% fast", () => {
  // A 48 kHz card whose clock is really 48,048 Hz: without correction it drains 1 ms/s.
  const nominal = 48000;
  const p = new Playout({ outRate: nominal, targetMs: 1000 });
  for (let i = 0; i < 10; i++) p.push(chunk(), CHUNK);
  p.start();
  const underruns = simulate(p, 1800, { outRate: nominal * 1.001 });
  assert.equal(underruns, 0);
  assert.ok(p.bufferedMs > 600, `level ${p.bufferedMs}`);
  assert.ok(p.resampler.ppm < 0, "plays slower to refill");
});

test("a 700 ms delivery stall on a 1 s buffer is inaudible", () => {
  const p = new Playout({ outRate: 48000, targetMs: 1000 });
  for (let i = 0; i < 10; i++) p.push(chunk(), CHUNK);
  p.start();
  // chunks due in 5.0..5.7 s arrive together at 5.7 s (a reconnect with resume_from)
  const held = [];
  const underruns = simulate(p, 10, {
    outRate: 48000,
    deliver: (t) => {
      if (t >= 4.95 && t < 5.65) {
        held.push(t);
        return false;
      }
      if (held.length) {
        for (const _ of held) p.push(chunk(), CHUNK);
        held.length = 0;
      }
      return true;
    },
  });
  assert.equal(underruns, 0);
});

test("flush and stop drop buffered audio; a higher target rebuffers longer", () => {
  const p = new Playout({ outRate: 48000, targetMs: 300 });
  for (let i = 0; i < 3; i++) p.push(chunk(), CHUNK);
  p.start();
  p.render(block(), 128);
  assert.equal(p.state, "playing");
  p.flush();
  assert.equal(p.state, "buffering");
  assert.equal(p.bufferedMs, 0);
  p.setTargetMs(2000);
  for (let i = 0; i < 19; i++) p.push(chunk(), CHUNK);
  p.render(block(), 128);
  assert.equal(p.state, "buffering");
  p.stop();
  assert.equal(p.state, "idle");
  assert.equal(p.bufferedMs, 0);
});

for (const outRate of [44100, 48000]) {
  test(`48 kHz Opus audio plays at ${outRate} Hz for 10 minutes with no underrun and a stable level`, () => {
    const p = new Playout({ outRate, targetMs: 1000 });
    p.setInRate(48000);
    for (let i = 0; i < 10; i++) p.push(chunk(0.25, OPUS_CHUNK), OPUS_CHUNK);
    p.start();
    const underruns = simulate(p, 600, { outRate, frames: OPUS_CHUNK });
    assert.equal(underruns, 0);
    assert.ok(p.bufferedMs > 800 && p.bufferedMs <= 1100, `level ${p.bufferedMs}`);
    assert.ok(Math.abs(p.playedMs - 600_000 + p.bufferedMs - 1000) < 50, `played ${p.playedMs} ms`);
  });
}

test("at its own rate 48 kHz input comes out sample for sample", () => {
  const p = new Playout({ outRate: 48000, targetMs: 1000 });
  p.setInRate(48000);
  const ramp = new Float32Array(OPUS_CHUNK * 2).map((_, i) => i % OPUS_CHUNK);
  for (let i = 0; i < 10; i++) p.push(ramp, OPUS_CHUNK); // at the target: no drift correction
  p.start();
  const out = block();
  p.render(out, 128);
  p.render(out, 128);
  // the interpolator's history delays the output by three frames
  assert.deepEqual(Array.from(out[0]), Array.from({ length: 128 }, (_, i) => 125 + i));
});

test("a change of input rate drops what is buffered at the old rate and keeps counting played time", () => {
  const p = new Playout({ outRate: 48000, targetMs: 200 });
  for (let i = 0; i < 3; i++) p.push(chunk(), CHUNK);
  p.start();
  const out = block();
  for (let i = 0; i < 75; i++) p.render(out, 128); // 200 ms
  const playedBefore = p.playedMs;
  assert.ok(Math.abs(playedBefore - 200) < 1, `${playedBefore}`);
  p.setInRate(48000);
  assert.equal(p.inRate, 48000);
  assert.equal(p.bufferedMs, 0);
  assert.equal(p.state, "buffering");
  assert.equal(p.playedMs, playedBefore);
  p.setInRate(48000); // the same rate: nothing happens
  p.push(chunk(0.5, OPUS_CHUNK), OPUS_CHUNK);
  p.push(chunk(0.5, OPUS_CHUNK), OPUS_CHUNK);
  p.render(out, 128);
  assert.equal(p.state, "playing");
  assert.ok(Math.abs(p.bufferedMs - (200 - 128 / 48)) < 0.1, `${p.bufferedMs}`);
  assert.ok(out[0].slice(4).every((v) => Math.abs(v - 0.5) < 1e-6));
  assert.ok(Math.abs(p.playedMs - playedBefore - 128 / 48) < 0.1);
});
