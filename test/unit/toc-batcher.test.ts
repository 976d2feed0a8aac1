import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sendGroups } from "../../core/aws/sqs-queue.ts";
import { encodeMessage, entryToWire, MAX_MESSAGE_BYTES, type TocEntry } from "../../core/messages.ts";
import { type BatchLimits, defaultLimits, InterleavingBatcher, TocBatcher } from "../../toc/toc-batcher.ts";

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

/** Runs entries through an interleaving batcher: the batches it returned, and the most entries it held. */
const interleave = (limits: BatchLimits, entries: readonly TocEntry[]) => {
  const b = new InterleavingBatcher(limits);
  const batches: TocEntry[][] = [];
  let peak = 0;
  for (const e of entries) {
    batches.push(...b.add(e));
    peak = Math.max(peak, b.pending);
  }
  batches.push(...b.flush());
  assert.equal(b.pending, 0, "nothing is left after the flush");
  return { batches, peak, paths: batches.map((x) => x.map((e) => e.path)) };
};

/** `n` files in each directory, directory after directory, as the crawl lists them. */
const tree = (dirs: readonly string[], n: number) =>
  dirs.flatMap((d) => Array.from({ length: n }, (_, i) => file(d ? `${d}/f${i}` : `f${i}`)));

const limits = (maxEntries: number, windowEntries: number): BatchLimits => ({
  ...defaultLimits(maxEntries, 1e12),
  startEntries: maxEntries,
  windowEntries,
});

describe("TOC batching across directories", () => {
  it("mixes directories round-robin, so that each batch spreads over their prefixes", () => {
    const { paths } = interleave(limits(6, 100), tree(["a", "b", "c"], 4));
    assert.deepEqual(paths, [
      ["a/f0", "b/f0", "c/f0", "a/f1", "b/f1", "c/f1"],
      ["a/f2", "b/f2", "c/f2", "a/f3", "b/f3", "c/f3"],
    ]);
  });

  it("keeps a single directory's order when there is nothing to mix it with", () => {
    const { paths } = interleave(limits(4, 3), tree(["only"], 10));
    assert.deepEqual(
      paths.flat(),
      tree(["only"], 10).map((e) => e.path),
    );
  });

  it("gives each directory a lane of its own (a subdirectory too) and sends a directory's own entry with its siblings", () => {
    const entries = [
      file("x"),
      file("y"),
      { path: "d", kind: "dir", size: 0, mtimeNs: "0" } as const,
      file("d/1"),
      file("d/2"),
      file("d/e/1"),
    ];
    const { paths } = interleave(limits(10, 100), entries);
    assert.deepEqual(paths, [["x", "d/1", "d/e/1", "y", "d/2", "d"]]);
  });

  for (const [name, entries, lim] of [
    ["many small directories, a wide window", tree(["a", "b", "c", "d", "e", "f", "g"], 30), limits(16, 64)],
    [
      "one directory larger than the window",
      [...tree(["big"], 500), ...tree(["s1", "s2"], 5)],
      limits(16, 40),
    ],
    ["a window of one entry", tree(["a", "b"], 20), limits(3, 1)],
    ["no window", tree(["a", "b"], 20), limits(3, 0)],
    ["top-level files and deep ones", [...tree([""], 30), ...tree(["p/q/r", "p/q"], 25)], limits(7, 20)],
  ] as const) {
    it(`puts every entry in exactly one batch within the window and the batch size (${name})`, () => {
      const { batches, peak, paths } = interleave(lim, entries);
      assert.deepEqual(paths.flat().sort(), entries.map((e) => e.path).sort());
      assert.equal(new Set(paths.flat()).size, entries.length, "no entry twice");
      for (const b of batches) assert.ok(b.length >= 1 && b.length <= lim.maxEntries);
      assert.ok(peak <= lim.windowEntries + lim.maxEntries, `held ${peak}`);
    });
  }

  it("holds a bounded number of entries however long the TOC (a million entries of one directory)", () => {
    const b = new InterleavingBatcher(limits(500, 2_000));
    let peak = 0;
    let sent = 0;
    for (let i = 0; i < 1_000_000; i++) {
      for (const x of b.add(file(`huge/${i}`))) sent += x.length;
      if (i % 1_000 === 0) peak = Math.max(peak, b.pending);
    }
    for (const x of b.flush()) sent += x.length;
    assert.equal(sent, 1_000_000);
    assert.ok(peak <= 2_500, `held ${peak}`);
  });

  it("sizes the window from the batch size, within bounds", () => {
    assert.equal(defaultLimits(10, 1).windowEntries, 1_000);
    assert.equal(defaultLimits(500, 1).windowEntries, 2_000);
    assert.equal(defaultLimits(5_000, 1).windowEntries, 20_000);
  });
});
