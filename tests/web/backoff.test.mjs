import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff } from "../../auralis_ray/web/backoff.js";

test("full jitter: uniform in [0, min(cap, base * 2^n))", () => {
  const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999999 });
  const delays = Array.from({ length: 7 }, () => Math.round(b.next()));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
  const z = new Backoff({ baseMs: 100, random: () => 0 });
  assert.equal(z.next(), 0);
});

test("reset starts over from the base", () => {
  const b = new Backoff({ baseMs: 250, capMs: 10000, random: () => 0.5 });
  b.next();
  b.next();
  b.next();
  assert.equal(b.ceilingMs, 2000);
  b.reset();
  assert.equal(b.next(), 125);
});

test("delays spread over the whole window (no thundering herd)", () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const seen = [];
  for (let i = 0; i < 2000; i++) seen.push(new Backoff({ baseMs: 1000, random }).next());
  const buckets = new Array(10).fill(0);
  for (const d of seen) buckets[Math.min(9, Math.floor(d / 100))]++;
  for (const n of buckets) assert.ok(n > 140 && n < 260, `bucket ${n}`);
});
