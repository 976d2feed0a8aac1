import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  defaultPacerTuning,
  PacedRequests,
  type PacerTuning,
  PrefixPacer,
  prefixOf,
} from "../../core/prefix-pacer.ts";
import { isThrottle } from "../../core/retry.ts";

/** No jitter unless a test asks for it: random() = 0.5 puts every gap at exactly the rate's. */
const tuning = (o: Partial<PacerTuning> = {}): PacerTuning => ({ ...defaultPacerTuning, jitter: 0, ...o });

/**
 * `n` requests that all want to leave at `now`, one after the other as a queue sends them: each asks again
 * when told to wait. Returns how long after `now` each one left.
 */
const burst = (p: PrefixPacer, lane: string, now: number, n: number) => {
  let t = now;
  return Array.from({ length: n }, () => {
    for (let wait = p.reserve(lane, t); wait > 0; wait = p.reserve(lane, t)) t += wait;
    return t - now;
  });
};

describe("per-prefix pacing", () => {
  for (const [key, prefix] of [
    ["a/b/c.txt", "a/b/"],
    ["c.txt", ""],
    ["a/b/", "a/"],
    ["a/", ""],
    ["deep/er/still/x", "deep/er/still/"],
    ["pre/fix/", "pre/"],
  ] as const) {
    it(`paces ${JSON.stringify(key)} with the other keys of ${JSON.stringify(prefix)}`, () => {
      assert.equal(prefixOf(key), prefix);
    });
  }

  it("does not pace a prefix that never said SlowDown", () => {
    const p = new PrefixPacer(tuning(), () => 0.5);
    assert.deepEqual(burst(p, "w:a/", 0, 1_000), Array(1_000).fill(0));
    assert.equal(p.rate("w:a/"), null);
  });

  it("halves what was sent on the first SlowDown and spaces the next requests by the new rate", () => {
    const p = new PrefixPacer(tuning(), () => 0.5);
    burst(p, "w:a/", 0, 400); // 400 in the first second
    p.throttled("w:a/", 1_000);
    assert.equal(p.rate("w:a/"), 200);
    // 200/s: a request every 5 ms, from now on.
    assert.deepEqual(burst(p, "w:a/", 1_000, 4), [0, 5, 10, 15]);
  });

  it("decreases once per hold time however many requests in flight come back throttled", () => {
    const p = new PrefixPacer(tuning({ holdMs: 1_000 }), () => 0.5);
    burst(p, "w:a/", 0, 800);
    for (let i = 0; i < 50; i++) p.throttled("w:a/", 1_000 + i);
    assert.equal(p.rate("w:a/"), 400);
    p.throttled("w:a/", 2_000);
    assert.equal(p.rate("w:a/"), 200, "a second later, a SlowDown halves it again");
  });

  it("climbs back by the step per second of successful requests (additive increase)", () => {
    const p = new PrefixPacer(tuning({ stepPerSec: 50 }), () => 0.5);
    burst(p, "w:a/", 0, 200);
    p.throttled("w:a/", 1_000);
    assert.equal(p.rate("w:a/"), 100);
    // One second's worth of successes at about 100/s adds about 50/s.
    for (let i = 0; i < 10; i++) p.succeeded("w:a/", 1_500);
    assert.equal(p.rate("w:a/"), 100, "no climb within the hold time of the decrease");
    for (let i = 0; i < 100; i++) p.succeeded("w:a/", 2_000);
    const r = p.rate("w:a/") ?? 0;
    assert.ok(r > 140 && r < 150, `rate ${r}`);
  });

  it("runs a prefix free again once its rate climbs past the release rate", () => {
    const p = new PrefixPacer(tuning({ stepPerSec: 1_000, releasePerSec: 300 }), () => 0.5);
    burst(p, "w:a/", 0, 400);
    p.throttled("w:a/", 1_000);
    let n = 0;
    while (p.rate("w:a/") !== null && n < 1_000) {
      p.succeeded("w:a/", 3_000);
      n++;
    }
    assert.equal(p.rate("w:a/"), null);
    assert.ok(n > 0 && n < 1_000);
    assert.deepEqual(burst(p, "w:a/", 3_000, 3), [0, 0, 0]);
  });

  it("never paces below the floor however many SlowDowns", () => {
    const p = new PrefixPacer(tuning({ minPerSec: 5, holdMs: 0 }), () => 0.5);
    burst(p, "w:a/", 0, 100);
    for (let t = 1; t < 40; t++) p.throttled("w:a/", 1_000 * t);
    assert.equal(p.rate("w:a/"), 5);
    assert.deepEqual(burst(p, "w:a/", 50_000, 3), [0, 200, 400]);
  });

  it("paces prefixes apart: a slow one does not hold up its neighbours", () => {
    const p = new PrefixPacer(tuning(), () => 0.5);
    burst(p, "w:hot/", 0, 100);
    p.throttled("w:hot/", 1_000);
    assert.ok((burst(p, "w:hot/", 1_000, 5).at(-1) ?? 0) > 0);
    assert.deepEqual(burst(p, "w:cool/", 1_000, 5), [0, 0, 0, 0, 0]);
    assert.deepEqual(burst(p, "r:hot/", 1_000, 5), [0, 0, 0, 0, 0], "reads are a lane of their own");
  });

  it("does not save up idle time: after a pause the requests are spaced again, not sent in a burst", () => {
    const p = new PrefixPacer(tuning(), () => 0.5);
    burst(p, "w:a/", 0, 100);
    p.throttled("w:a/", 1_000); // 50/s: 20 ms apart
    burst(p, "w:a/", 1_000, 2);
    assert.deepEqual(burst(p, "w:a/", 60_000, 3), [0, 20, 40]);
  });

  it("jitters each gap within the tuning's share, both ways", () => {
    for (const [random, gap] of [
      [0, 16],
      [0.5, 20],
      [1, 24],
    ] as const) {
      const p = new PrefixPacer(tuning({ jitter: 0.2 }), () => random);
      burst(p, "w:a/", 0, 100);
      p.throttled("w:a/", 1_000); // 50/s: 20 ms apart, ± 20 %
      assert.deepEqual(burst(p, "w:a/", 1_000, 2), [0, gap]);
    }
  });

  it("remembers a bounded number of prefixes, forgetting the least recently used", () => {
    const p = new PrefixPacer(tuning({ maxPrefixes: 3 }), () => 0.5);
    for (const lane of ["a", "b", "c"]) {
      burst(p, lane, 0, 100);
      p.throttled(lane, 1_000);
    }
    p.reserve("a", 1_000); // a is used again: b is now the oldest
    p.reserve("d", 1_000);
    assert.equal(p.size, 3);
    assert.equal(p.rate("b"), null, "b was forgotten");
    assert.ok(p.rate("a") !== null && p.rate("c") !== null);
  });

  it("takes no slot when it tells a request to wait, so that a rate changed meanwhile applies at once", () => {
    const p = new PrefixPacer(tuning({ stepPerSec: 1_000, holdMs: 0 }), () => 0.5);
    burst(p, "w:a/", 0, 20);
    p.throttled("w:a/", 1_000); // 10/s
    assert.equal(p.reserve("w:a/", 1_000), 0);
    assert.equal(p.reserve("w:a/", 1_000), 100);
    assert.equal(p.reserve("w:a/", 1_050), 50, "asking again changes nothing");
    for (let i = 0; i < 10; i++) p.succeeded("w:a/", 1_050);
    const r = p.rate("w:a/") ?? 0;
    assert.ok(r > 100, `rate ${r}`);
    assert.equal(
      p.reserve("w:a/", 1_100),
      0,
      "the slot already taken keeps its time; the next ones follow the new rate",
    );
    assert.ok(p.reserve("w:a/", 1_100) <= 1_000 / r + 1e-9);
  });

  it("waits for its slot on the clock, and feeds back SlowDown and success", async () => {
    const pacer = new PrefixPacer(tuning({ holdMs: 0 }), () => 0.5);
    const paced = new PacedRequests(pacer, isThrottle);
    const slowDown = Object.assign(new Error("Please reduce your request rate."), {
      name: "SlowDown",
      $metadata: { httpStatusCode: 503 },
    });
    for (let i = 0; i < 40; i++) await paced.run("w:a/", async () => "ok");
    await assert.rejects(
      paced.run("w:a/", () => Promise.reject(slowDown)),
      (err) => err === slowDown,
    );
    const rate = pacer.rate("w:a/") ?? 0;
    // 41 requests (the throttled one too) in under a quarter of a second count as 164/s at most: paced at half that.
    assert.ok(rate >= 5 && rate <= 82, `got ${rate}`);
    const started = Date.now();
    for (let i = 0; i < 4; i++) await paced.run("w:a/", async () => "ok");
    const took = Date.now() - started;
    const expected = (3 * 1_000) / rate;
    assert.ok(took >= expected * 0.8, `4 requests at ${rate}/s took ${took} ms, expected about ${expected}`);
    assert.ok((pacer.rate("w:a/") ?? 0) > rate, "successes raise the rate");
  });

  it("sends queued requests in order, and takes an aborted one out of the queue", async () => {
    const pacer = new PrefixPacer(tuning({ minPerSec: 20, backoff: 0.01 }), () => 0.5);
    const paced = new PacedRequests(pacer, isThrottle);
    burst(pacer, "w:a/", Date.now(), 1);
    pacer.throttled("w:a/", Date.now()); // 20/s: a slot every 50 ms
    const order: number[] = [];
    const ac = new AbortController();
    const runs = [0, 1, 2, 3].map((i) =>
      paced.run(
        "w:a/",
        async () => {
          order.push(i);
        },
        i === 1 ? ac.signal : undefined,
      ),
    );
    ac.abort(new Error("stopped"));
    const outcomes = await Promise.allSettled(runs);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["fulfilled", "rejected", "fulfilled", "fulfilled"],
    );
    assert.deepEqual(order, [0, 2, 3]);
  });

  it("stops waiting for its slot when the run is aborted", async () => {
    const pacer = new PrefixPacer(tuning({ minPerSec: 0.1, backoff: 0.01 }), () => 0.5);
    const paced = new PacedRequests(pacer, isThrottle);
    burst(pacer, "w:a/", Date.now(), 1);
    pacer.throttled("w:a/", Date.now()); // 0.1/s: a slot every 10 s
    pacer.reserve("w:a/", Date.now());
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(new Error("stopped")), 50);
    let ran = false;
    await assert.rejects(
      paced.run(
        "w:a/",
        async () => {
          ran = true;
        },
        ac.signal,
      ),
      /stopped/,
    );
    assert.equal(ran, false);
    assert.ok(Date.now() - started < 2_000);
  });
});
