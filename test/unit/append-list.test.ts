import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppendList } from "../../master/append-list.ts";
import { BATCH_RESERVATION, reservationFor } from "../../master/run-record.ts";

describe("the append-only list", () => {
  it("grows at its end and keeps the order of what was appended", () => {
    const l = AppendList.of([1, 2]).append([3]).append([]).append([4, 5]);
    assert.deepEqual(l.toArray(), [1, 2, 3, 4, 5]);
    assert.deepEqual([...l], [1, 2, 3, 4, 5]);
    assert.equal(l.length, 5);
    assert.equal(l.at(0), 1);
    assert.equal(l.at(-1), 5);
    assert.equal(l.at(5), undefined);
    assert.equal(JSON.stringify({ l }), '{"l":[1,2,3,4,5]}');
  });

  it("never changes a version: appending to an older one copies it, and the newer one keeps its items", () => {
    const a = AppendList.of(["a"]);
    const b = a.append(["b"]);
    const c = a.append(["c"]);
    assert.deepEqual(a.toArray(), ["a"]);
    assert.deepEqual(b.toArray(), ["a", "b"]);
    assert.deepEqual(c.toArray(), ["a", "c"]);
    assert.equal(b.sharesStorageWith(a), true, "the first append to the newest version copies nothing");
    assert.equal(c.sharesStorageWith(a), false, "an append to an older version copies it");
    const e1 = AppendList.empty<string>().append(["x"]);
    const e2 = AppendList.empty<string>().append(["y"]);
    assert.deepEqual([e1.toArray(), e2.toArray()], [["x"], ["y"]], "empty lists share nothing");
  });

  it("appends 400,000 items in batches of 500 over one backing array", () => {
    let l = AppendList.empty<number>();
    const first = l.append([0]);
    l = first;
    for (let b = 0; b < 800; b++) {
      const next = l.append(Array.from({ length: 500 }, (_, i) => b * 500 + i));
      assert.ok(next.sharesStorageWith(first), `batch ${b} copied the list`);
      l = next;
    }
    assert.equal(l.length, 400_001);
    assert.equal(first.length, 1);
  });
});

describe("batch number reservations", () => {
  it("records a new high-water mark only when numbers beyond the recorded one are about to be used", () => {
    assert.equal(reservationFor(0, 1), 1 + BATCH_RESERVATION);
    assert.equal(reservationFor(BATCH_RESERVATION, 10), null);
    assert.equal(reservationFor(BATCH_RESERVATION, BATCH_RESERVATION), null);
    // A stage that runs past the reservation it started under gets a new one before it crosses it.
    assert.equal(reservationFor(BATCH_RESERVATION, BATCH_RESERVATION + 10), 2 * BATCH_RESERVATION + 10);
  });
});
