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
