import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../core/log.ts";
import {
  type BatchResult,
  decodeMessage,
  emptyTally,
  MAX_MESSAGE_BYTES,
  type SummaryMessage,
} from "../../core/messages.ts";
import type { MessageQueue, ReceivedMessage } from "../../core/ports.ts";
import { Outbox } from "../../worker/outbox.ts";
import { packSummaries, type SummaryHead } from "../../worker/summary-pack.ts";

const RUN = "pack-run";
const head: SummaryHead = {
  type: "SUMMARY",
  worker: "w1",
  kind: "CURRENT",
  phase: "WRITE",
  totals: { WRITE: emptyTally(), VALIDATE: emptyTally() },
  inFlight: 1,
  rssBytes: 123_456_789,
  sqsRequests: 42,
  protocolErrors: 0,
};

/** A batch of `n` entries that all failed, with paths of `len` characters made of `ch`. */
function allFailed(batch: number, n: number, len: number, ch: string): BatchResult {
  const errors = Array.from({ length: n }, (_, i) => {
    const path = `${String(i).padStart(4, "0")}/${ch.repeat(len - 5)}`;
    return { path, reason: `permission denied (open /mnt/source/${path})`.slice(0, 300) };
  });
  return {
    batch,
    phase: "WRITE",
    ok: 0,
    failed: n,
    skipped: 0,
    unchanged: 0,
    bytes: 0,
    receiveCount: 1,
    errors,
    skips: [],
  };
}

function decodeAll(bodies: readonly string[]): SummaryMessage[] {
  return bodies.map((b) => {
    assert.ok(b.length <= MAX_MESSAGE_BYTES, `a body of ${b.length} bytes`);
    const d = decodeMessage(b, { expectRun: RUN, accept: ["SUMMARY"] });
    assert.ok(d.ok && d.message.type === "SUMMARY", d.ok ? "" : d.error.message);
    return d.message;
  });
}

describe("summary packing", () => {
  for (const [what, ch] of [
    ["243-character ASCII paths", "a"],
    ["243-character non-ASCII paths (six bytes each escaped)", "é"],
  ] as const) {
    it(`splits a 500-entry batch that failed whole, with ${what}, into parts that each fit and add up`, () => {
      const r = allFailed(3, 500, 243, ch);
      const packed = packSummaries(RUN, head, [r]);
      assert.ok(packed.length >= 2, `${packed.length} message(s)`);
      const parts = decodeAll(packed.map((p) => p.body)).flatMap((m) => m.batches);
      assert.deepEqual(
        parts.map((p) => p.part),
        parts.map((_, index) => ({ index, of: parts.length })),
      );
      for (const p of parts)
        assert.deepEqual({ ...p, errors: [], part: undefined }, { ...r, errors: [], part: undefined });
      assert.deepEqual(
        parts.flatMap((p) => p.errors),
        r.errors,
        "every error once, in order",
      );
      assert.deepEqual(
        packed.map((p) => p.completes),
        [...packed.slice(1).map(() => []), [0]],
        "the result completes with its last part",
      );
    });
  }

  it("packs small results together and whole, and keeps each big one's parts to itself", () => {
    const small = (b: number) => allFailed(b, 2, 20, "x");
    const packed = packSummaries(RUN, head, [small(1), small(2), allFailed(3, 500, 243, "é"), small(4)]);
    const messages = decodeAll(packed.map((p) => p.body));
    assert.deepEqual(
      messages[0]?.batches.slice(0, 2).map((b) => [b.batch, b.part]),
      [
        [1, undefined],
        [2, undefined],
      ],
      "the small ones share a message, whole",
    );
    const parts = messages.flatMap((m) => m.batches).filter((b) => b.batch === 3);
    assert.ok(parts.length >= 4, `${parts.length} parts`);
    assert.deepEqual(
      parts.map((b) => b.part),
      parts.map((_, index) => ({ index, of: parts.length })),
    );
    const completed = packed.flatMap((p) => p.completes);
    assert.deepEqual(completed, [0, 1, 2, 3], "each result completes once, in order");
    const all = messages.flatMap((m) => m.batches);
    assert.equal(all.filter((b) => b.batch === 3).flatMap((b) => b.errors).length, 500);
  });

  it("makes one heartbeat body of no results", () => {
    const packed = packSummaries(RUN, head, []);
    assert.equal(packed.length, 1);
    assert.deepEqual(decodeAll([packed[0]?.body ?? ""])[0]?.batches, []);
  });
});

/** An in-memory report queue that refuses what `refuse` says, and records what it took. */
function memoryQueue(refuse: (body: string) => boolean): MessageQueue & { readonly taken: string[] } {
  const taken: string[] = [];
  return {
    url: "mem://reports",
    taken,
    requests: 0,
    async send(bodies) {
      if (bodies.some(refuse))
        throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      taken.push(...bodies);
    },
    async receive(): Promise<ReceivedMessage[]> {
      return [];
    },
    async delete() {},
    async extend() {},
    async purge() {},
    async visibilityTimeoutSec() {
      return 30;
    },
  };
}

describe("outbox", () => {
  const quiet = createLogger("json", {}, () => {});
  const wait = async (pred: () => boolean, ms = 5_000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("keeps every queued result through failed sends and delivers them all, in order, once the queue is back", async () => {
    let down = true;
    const q = memoryQueue(() => down);
    const sent: string[] = [];
    const stop = new AbortController();
    const outbox = new Outbox({
      queue: q,
      runId: () => RUN,
      head: () => head,
      reportMs: 20,
      heartbeatMs: 60_000,
      onSent: (r) => sent.push(...r),
      log: quiet,
      signal: stop.signal,
    });
    const loop = outbox.runResults();
    outbox.result("r1", allFailed(1, 500, 243, "é"));
    outbox.result("r2", allFailed(2, 3, 10, "b"));
    await new Promise((r) => setTimeout(r, 300)); // a few failed attempts
    outbox.result("r3", allFailed(3, 3, 10, "c"));
    assert.deepEqual(sent, []);
    assert.ok(outbox.pending > 0);
    down = false;
    await wait(() => sent.length === 3);
    stop.abort();
    await loop;
    assert.deepEqual(sent, ["r1", "r2", "r3"]);
    const batches = decodeAll(q.taken).flatMap((m) => m.batches);
    assert.equal(batches.filter((b) => b.batch === 1).flatMap((b) => b.errors).length, 500);
    assert.deepEqual([...new Set(batches.map((b) => b.batch))], [1, 2, 3]);
  });

  it("sends heartbeats while the results lane cannot send", async () => {
    const q = memoryQueue((b) => !b.includes('"batches":[]'));
    const stop = new AbortController();
    const outbox = new Outbox({
      queue: q,
      runId: () => RUN,
      head: () => head,
      reportMs: 20,
      heartbeatMs: 100,
      onSent: () => {},
      log: quiet,
      signal: stop.signal,
    });
    const loops = [outbox.runResults(), outbox.runHeartbeats()];
    outbox.result("r1", allFailed(1, 2, 10, "a"));
    await wait(() => q.taken.length >= 3);
    stop.abort();
    await Promise.all(loops);
    assert.equal(outbox.pending, 1, "the result is still kept");
    assert.ok(decodeAll(q.taken).every((m) => m.batches.length === 0));
  });
});
