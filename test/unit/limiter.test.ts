import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdaptiveLimit, AdaptiveLimiter, Limiter } from "../../core/limiter.ts";

describe("limits", () => {
  it("runs at most the limit at once", async () => {
    const l = new Limiter(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        l.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setImmediate(r));
          active--;
        }),
      ),
    );
    assert.equal(peak, 3);
  });

  it("halves on throttling and climbs back by one per streak of successes", () => {
    const a = new AdaptiveLimit(2, 64, 32, 3);
    a.throttled();
    assert.equal(a.value, 16);
    a.throttled();
    a.throttled();
    a.throttled();
    a.throttled();
    assert.equal(a.value, 2, "never below the minimum");
    for (let i = 0; i < 9; i++) a.success();
    assert.equal(a.value, 5);
    a.throttled();
    assert.equal(a.value, 2);
  });

  it("lets fewer tasks run at once after the service said slow down", async () => {
    const slow = Object.assign(new Error("Please reduce your request rate."), { name: "SlowDown" });
    const limiter = new AdaptiveLimiter(
      new AdaptiveLimit(1, 8, 8, 1_000),
      (e) => (e as Error).name === "SlowDown",
    );
    await assert.rejects(limiter.run(() => Promise.reject(slow)));
    assert.equal(limiter.limit.value, 4);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 12 }, () =>
        limiter.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setImmediate(r));
          active--;
        }),
      ),
    );
    assert.equal(peak, 4);
  });
});
