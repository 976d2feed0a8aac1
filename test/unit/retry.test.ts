/** The one retry policy: counted retries, retries for a time, the outage clock and the pause of a failing loop. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutageClock, outagePauseMs, withRetry } from "../../core/retry.ts";

const throttled = () => Object.assign(new Error("slow down"), { name: "SlowDown" });
const internal = () => Object.assign(new Error("internal error"), { name: "InternalError" });
const fast = { attempts: 3, baseMs: 0, maxMs: 0 };

describe("retry: one policy", () => {
  it("retries a retryable error as many times as the policy allows, then throws it", async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw internal();
        },
        { policy: fast },
      ),
      /internal error/,
    );
    assert.equal(calls, 3);
  });

  it("retries a throttle for a time, not a count: the store asked to slow down, not to give up", async () => {
    let t = 0;
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          t += 1_000;
          throw throttled();
        },
        { policy: fast, throttleForMs: 10_000, now: () => t },
      ),
      /slow down/,
    );
    assert.equal(
      calls,
      11,
      "failed at 1 s to 11 s: the eleventh is past the ten seconds, far past 3 attempts",
    );
    let later = 0;
    const value = await withRetry(
      async () => {
        later++;
        if (later < 8) throw throttled();
        return "stored";
      },
      { policy: fast },
    );
    assert.equal(value, "stored", "eight tries, past the policy's three, within the default bound");
  });

  it("never retries an error that is not retryable", async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error("no such bucket");
        },
        { policy: fast },
      ),
      /no such bucket/,
    );
    assert.equal(calls, 1);
  });

  it("retries for a time instead of a count when given one, and stops once it is spent", async () => {
    let t = 0;
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          t += 400;
          throw throttled();
        },
        { policy: { attempts: 0, baseMs: 0, maxMs: 0 }, forMs: 1_000, now: () => t },
      ),
      /slow down/,
    );
    assert.equal(calls, 3, "failed at 400, 800 and 1200 ms: the third is past the second");
  });

  it("tells how long calls have failed in a row, and whether that is past the bound", () => {
    let t = 0;
    const clock = new OutageClock(1_000, () => t);
    assert.equal(clock.recovered(), null, "no outage yet");
    assert.equal(clock.failed(), false);
    t = 1_000;
    assert.equal(clock.failed(), false, "exactly the bound is still within it");
    t = 1_001;
    assert.equal(clock.failed(), true);
    assert.equal(clock.recovered(), 1_001);
    assert.equal(clock.failed(), false, "a new outage starts from its own first failure");
  });

  it("pauses a failing loop at least its floor, and at most the policy's cap above it", () => {
    for (const failures of [0, 1, 5, 8, 1_000]) {
      const ms = outagePauseMs(failures, 200);
      assert.ok(ms >= 200 && ms <= 5_200, `${failures} failures: ${ms} ms`);
    }
  });
});
