import { test } from "node:test";
import assert from "node:assert/strict";
import { JitterTracker } from "../../auralis_ray/web/jitter.js";

const T0 = 1_700_000_000; // server publish time of chunk 0 (s)

test("the catch-up burst after connect is not counted as jitter", () => {
  const j = new JitterTracker();
  // 10 buffered chunks arrive at once, then live ones every 100 ms, 3 ms after publish
  for (let i = 0; i < 10; i++) j.observe(i, T0 + i * 0.1, T0 * 1000 + 903 + i * 0.2);
  for (let i = 10; i < 60; i++) j.observe(i, T0 + i * 0.1, (T0 + i * 0.1) * 1000 + 3);
  assert.ok(j.jitterMs < 0.5, `jitter ${j.jitterMs}`);
  assert.ok(j.spreadMs < 0.5, `spread ${j.spreadMs}`);
});

test("a resume's catch-up at twice real time is not counted as jitter either", () => {
  const j = new JitterTracker();
  // 30 chunks published before the reconnect: 10 at once, 20 at one every 50 ms, then live, 3 ms late
  const t = T0 * 1000 + 3000; // the reconnect, 3 s after chunk 0 was published
  for (let i = 0; i < 10; i++) j.observe(i, T0 + i * 0.1, t + i * 0.2);
  for (let i = 10; i < 30; i++) j.observe(i, T0 + i * 0.1, t + (i - 9) * 50);
  const caughtUp = (t + 21 * 50) / 1000; // chunk 30 on: as published
  for (let i = 30; i < 80; i++) j.observe(i, T0 + i * 0.1, Math.max((T0 + i * 0.1) * 1000, caughtUp * 1000) + 3);
  assert.ok(j.spreadMs < 60, `spread ${j.spreadMs}`);
});

test("late chunks raise jitter and the delay spread", () => {
  const j = new JitterTracker();
  for (let i = 0; i < 200; i++) {
    const late = i % 10 === 5 ? 80 : 0;
    j.observe(i, T0 + i * 0.1, (T0 + i * 0.1) * 1000 + 5 + late);
  }
  assert.ok(Math.abs(j.spreadMs - 80) < 1e-6, `spread ${j.spreadMs}`);
  assert.ok(j.jitterMs > 5, `jitter ${j.jitterMs}`);
});

test("a chunk id jump restarts measurement instead of counting a huge delay", () => {
  const j = new JitterTracker();
  for (let i = 0; i < 20; i++) j.observe(i, T0 + i * 0.1, (T0 + i * 0.1) * 1000 + 2);
  j.observe(500, T0 + 50, (T0 + 20 * 0.1) * 1000 + 100); // BUFFER_OVERRUN skip
  for (let i = 501; i < 520; i++) j.observe(i, T0 + i * 0.1, (T0 + i * 0.1) * 1000 + 2);
  assert.ok(j.spreadMs < 1, `spread ${j.spreadMs}`);
  j.reset();
  assert.equal(j.settling, true);
});
