/** Direct file system calls give the event loop a turn every few milliseconds, all callers together. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Breather } from "../../worker/targets/fs-calls.ts";

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
};

describe("Breather", () => {
  it("lets a timer run while callers work synchronously, and makes every caller past the deadline wait", async () => {
    const b = new Breather(5);
    let timerRan = false;
    let timerSeenAt = -1;
    setTimeout(() => {
      timerRan = true;
    }, 0);
    let steps = 0;
    // Four callers, each doing 1 ms of synchronous work per step, as handlers on direct calls do.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 20; i++) {
          await b.breathe();
          busy(1);
          steps++;
          if (timerRan && timerSeenAt < 0) timerSeenAt = steps;
        }
      }),
    );
    assert.equal(steps, 80);
    assert.ok(timerRan, "the timer ran before the work ended");
    // Without turns it would run only after all 80 ms of work.
    assert.ok(
      timerSeenAt > 0 && timerSeenAt <= 40,
      `the timer ran in the first half (at step ${timerSeenAt})`,
    );
  });

  it("does not wait before the deadline", () => {
    const b = new Breather(1_000);
    assert.equal(b.breathe(), undefined);
  });
});
