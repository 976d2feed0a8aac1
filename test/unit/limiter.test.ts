import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdaptiveLimit, AdaptiveLimiter, Limiter, Pace } from "../../core/limiter.ts";

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

  it("says when fewer than n tasks wait, as soon as they do", async () => {
    const l = new Limiter(1);
    const gates: (() => void)[] = [];
    const tasks = Array.from({ length: 6 }, () => l.run(() => new Promise<void>((r) => gates.push(r))));
    await new Promise((r) => setImmediate(r));
    assert.equal(l.queued, 5);
    let below3 = false;
    const w = l.whenQueuedBelow(3).then(() => {
      below3 = true;
    });
    for (let i = 0; i < 2; i++) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(l.queued, 3);
    assert.equal(below3, false, "3 still wait");
    gates.shift()?.();
    await w;
    assert.equal(l.queued, 2);
    await l.whenQueuedBelow(5); // already true: resolves at once
    while (gates.length > 0 || l.queued > 0) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(tasks);
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

describe("the pace of --max-entries-per-sec", () => {
  it("lets the first take through at once and holds each next one for its share of the rate", async () => {
    const pace = new Pace(200);
    const t0 = performance.now();
    await pace.take(20); // at once; the next may start 100 ms later
    const first = performance.now() - t0;
    await pace.take(20);
    const second = performance.now() - t0;
    await pace.take(1);
    const third = performance.now() - t0;
    assert.ok(first < 50, `${first} ms`);
    assert.ok(second >= 95 && second < 400, `${second} ms`);
    assert.ok(third >= 195, `${third} ms`);
  });

  it("takes no time with no limit, and ends its wait when the signal aborts", async () => {
    const none = new Pace(0);
    await none.take(1_000_000);
    const pace = new Pace(1);
    await pace.take(1);
    const ctl = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ctl.abort(), 30);
    await pace.take(1, ctl.signal);
    assert.ok(performance.now() - t0 < 500);
  });
});
