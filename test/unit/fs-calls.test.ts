/** Direct file system calls give the event loop a turn every few milliseconds, all callers together. */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { Breather, directCalls, threadCalls } from "../../worker/targets/fs-calls.ts";

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

for (const calls of [directCalls, threadCalls]) {
  describe(`reading an opened source file whole (${calls.direct ? "direct" : "threads"})`, () => {
    it("reads the size it is given in one buffer, fewer bytes when the file is shorter, and all without a size", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "s3bl-read-"));
      try {
        const f = path.join(dir, "f");
        const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
        fs.writeFileSync(f, bytes);
        const h = await calls.openSource(f);
        try {
          assert.deepEqual(await h.read(5000), bytes);
          // Grown since its stat: only the bytes the stat said (the stat after the read shows the change).
          fs.appendFileSync(f, "more");
          assert.deepEqual(await h.read(5000), bytes);
          assert.deepEqual(await h.read(), Buffer.concat([bytes, Buffer.from("more")]));
          // Shrunk since its stat: what is there.
          fs.truncateSync(f, 100);
          assert.deepEqual(await h.read(5000), bytes.subarray(0, 100));
          assert.equal((await h.read(0)).length, 0);
        } finally {
          await h.close();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
