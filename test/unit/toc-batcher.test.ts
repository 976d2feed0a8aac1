import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sendGroups } from "../../core/aws/sqs-queue.ts";
import { encodeMessage, entryToWire, MAX_MESSAGE_BYTES, type TocEntry } from "../../core/messages.ts";
import { defaultLimits, TocBatcher } from "../../toc/toc-batcher.ts";

const file = (path: string, size = 1): TocEntry => ({ path, kind: "file", size, mtimeNs: "0" });

describe("TOC batching", () => {
  it("starts with small batches and grows them by half up to the limit", () => {
    const b = new TocBatcher({ ...defaultLimits(40, 1e12), startEntries: 10 });
    const sizes = Array.from({ length: 200 }, (_, i) => b.add(file(String(i)))).flatMap((out) =>
      out.map((x) => x.length),
    );
    assert.deepEqual(sizes.slice(0, 6), [10, 15, 23, 35, 40, 40]);
  });

  it("closes a batch at the entry limit", () => {
    const b = new TocBatcher(defaultLimits(3, 1e12));
    const out = ["a", "b", "c", "d"].flatMap((p) => b.add(file(p)));
    assert.deepEqual(
      out.map((batch) => batch.map((e) => e.path)),
      [["a", "b", "c"]],
    );
    assert.deepEqual(
      b.flush()?.map((e) => e.path),
      ["d"],
    );
    assert.equal(b.flush(), null);
  });

  it("sends a file bigger than the byte budget in a batch of its own, without holding up the others", () => {
    const b = new TocBatcher(defaultLimits(100, 1_000));
    const out = [file("s1", 10), file("big", 5_000), file("s2", 10)].flatMap((e) => b.add(e));
    assert.deepEqual(
      out.map((batch) => batch.map((e) => e.path)),
      [["s1"], ["big"]],
    );
    assert.deepEqual(
      b.flush()?.map((e) => e.path),
      ["s2"],
    );
  });

  it("keeps every batch message under the SQS size limit, whatever the names", () => {
    const b = new TocBatcher(defaultLimits(5_000, 1e15));
    const long = "日".repeat(300);
    const batches = [];
    for (let i = 0; i < 3_000; i++) batches.push(...b.add(file(`${long}/${i}`)));
    const last = b.flush();
    if (last) batches.push(last);
    assert.ok(batches.length > 1);
    for (const [n, batch] of batches.entries()) {
      const body = encodeMessage("run-id-of-some-length", {
        type: "TOC_BATCH",
        phase: "VALIDATE",
        stage: "content",
        batch: 1_000_000 + n,
        entries: batch.map(entryToWire),
      });
      assert.ok(Buffer.byteLength(body) <= MAX_MESSAGE_BYTES);
    }
    assert.equal(
      batches.reduce((s, x) => s + x.length, 0),
      3_000,
    );
  });

  it("groups messages for SendMessageBatch by ten and by 256 KiB in all", () => {
    const small = Array.from({ length: 23 }, (_, i) => `m${i}`);
    assert.deepEqual(
      sendGroups(small).map((g) => g.length),
      [10, 10, 3],
    );
    const big = Array.from({ length: 5 }, () => "x".repeat(100 * 1024));
    assert.deepEqual(
      sendGroups(big).map((g) => g.length),
      [2, 2, 1],
    );
  });
});
