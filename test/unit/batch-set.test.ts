import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BatchSet } from "../../master/batch-set.ts";

const of = (...batches: number[]) => batches.reduce((s, b) => s.add(b), BatchSet.empty);

describe("the set of batches done", () => {
  it("holds what was added and nothing else", () => {
    const s = of(3, 0, 7, 1);
    for (const b of [0, 1, 3, 7]) assert.equal(s.has(b), true, `has ${b}`);
    for (const b of [-1, 2, 4, 6, 8, 100]) assert.equal(s.has(b), false, `has not ${b}`);
  });

  it("keeps batches finished in order as one run, whatever the count", () => {
    const s = of(...Array.from({ length: 5_000 }, (_, i) => i + 10));
    assert.equal(s.runCount, 1);
    assert.equal(s.countIn(0, 100_000), 5_000);
  });

  it("joins runs when the gap between them is filled, from either side", () => {
    assert.equal(of(0, 2).runCount, 2);
    assert.equal(of(0, 2, 1).runCount, 1);
    assert.equal(of(5, 3, 4).runCount, 1);
    assert.equal(of(9, 8, 7).runCount, 1);
    assert.equal(of(0, 4, 2, 1, 3).runCount, 1);
  });

  it("is unchanged by adding a batch twice, and never changes the set it came from", () => {
    const before = of(1, 2);
    const after = before.add(5);
    assert.equal(after.add(5), after);
    assert.equal(before.has(5), false);
    assert.equal(after.has(5), true);
  });

  it("counts the batches of a range", () => {
    const s = of(0, 1, 2, 5, 6, 9);
    assert.equal(s.countIn(0, 3), 3);
    assert.equal(s.countIn(2, 7), 3);
    assert.equal(s.countIn(7, 9), 0);
    assert.equal(s.countIn(9, 10), 1);
  });

  it("agrees with a plain set over a shuffled sequence", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const plain = new Set<number>();
    let s = BatchSet.empty;
    for (let n = 0; n < 2_000; n++) {
      const b = Math.floor(random() * 500);
      plain.add(b);
      s = s.add(b);
    }
    for (let b = -1; b <= 501; b++) assert.equal(s.has(b), plain.has(b), `batch ${b}`);
    assert.equal(s.countIn(0, 500), plain.size);
  });

  it("lists the numbers of one set missing from another as ranges, within bounds and up to a limit", () => {
    const issued = of(...Array.from({ length: 20 }, (_, i) => i));
    const done = of(0, 1, 2, 5, 9, 10, 11, 19);
    assert.deepEqual(issued.rangesNotIn(done, 0, 100), [
      [3, 5],
      [6, 9],
      [12, 19],
    ]);
    assert.deepEqual(issued.rangesNotIn(done, 7, 15), [
      [7, 9],
      [12, 15],
    ]);
    assert.deepEqual(issued.rangesNotIn(done, 0, 100, 2), [
      [3, 5],
      [6, 9],
    ]);
    assert.deepEqual(issued.rangesNotIn(issued, 0, 100), []);
    assert.deepEqual(of(4, 8).rangesNotIn(BatchSet.empty, 0, 100), [
      [4, 5],
      [8, 9],
    ]);
  });
});
