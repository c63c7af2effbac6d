import { test } from "node:test";
import assert from "node:assert/strict";
import { TierPolicy } from "../../auralis_ray/web/tier.js";

test("a calm network keeps the tier", () => {
  const p = new TierPolicy();
  for (let t = 0; t < 300_000; t += 1000) assert.equal(p.decide({ nowMs: t, tier: "normal", spreadMs: 10, underruns: 0 }), null);
});

test("an underrun asks for the next tier up at once", () => {
  const p = new TierPolicy();
  p.decide({ nowMs: 0, tier: "normal", spreadMs: 10, underruns: 0 });
  assert.equal(p.decide({ nowMs: 1000, tier: "normal", spreadMs: 10, underruns: 1 }), "stable");
  // not repeated while the ack is pending
  assert.equal(p.decide({ nowMs: 2000, tier: "normal", spreadMs: 10, underruns: 1 }), null);
});

test("a delay spread the target cannot absorb asks for a tier that can", () => {
  const p = new TierPolicy();
  assert.equal(p.decide({ nowMs: 0, tier: "normal", spreadMs: 1500, underruns: 0 }), "defensive");
  const q = new TierPolicy();
  assert.equal(q.decide({ nowMs: 0, tier: "normal", spreadMs: 700, underruns: 0 }), "stable");
  const r = new TierPolicy({ ceiling: "stable" });
  assert.equal(r.decide({ nowMs: 0, tier: "normal", spreadMs: 5000, underruns: 0 }), "stable");
});

test("after a calm period it steps down one tier, never below the floor", () => {
  const p = new TierPolicy({ calmMs: 60_000, floor: "normal" });
  let tier = "defensive";
  const asked = [];
  for (let t = 0; t <= 400_000; t += 1000) {
    const want = p.decide({ nowMs: t, tier, spreadMs: 20, underruns: 0 });
    if (want) {
      asked.push([t, want]);
      tier = want;
    }
  }
  assert.deepEqual(asked, [[60_000, "stable"], [120_000, "normal"]]);
});

test("each underrun doubles the calm period needed before stepping down", () => {
  const p = new TierPolicy({ calmMs: 60_000, floor: "minimal" });
  p.decide({ nowMs: 0, tier: "normal", spreadMs: 10, underruns: 0 });
  assert.equal(p.decide({ nowMs: 1000, tier: "normal", spreadMs: 10, underruns: 1 }), "stable");
  let firstDown = null;
  for (let t = 2000; t < 400_000 && firstDown === null; t += 1000) {
    if (p.decide({ nowMs: t, tier: "stable", spreadMs: 10, underruns: 1 })) firstDown = t;
  }
  assert.equal(firstDown, 121_000);
});
