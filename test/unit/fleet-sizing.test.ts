import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEADLINE_SHAPE, deadlineAt, decide, type SizingInput } from "../../master/fleet-sizing.ts";

const worker = (id: string, entriesPerSec: number | null, bytesPerSec = 0) => ({
  id,
  entriesPerSec,
  bytesPerSec,
});

/** Two workers at 10 entries/s, 6,000 entries left, $3.60 an hour per instance (a dollar-millicent a second). */
const base: SizingInput = {
  nowMs: 0,
  deadlineMs: 200_000,
  budgetDollars: null,
  maxWorkers: 10,
  workers: [worker("w-a", 10), worker("w-b", 10)],
  booting: 0,
  remaining: { entries: 6_000, bytes: 0, validateEntries: 0 },
  crawl: { done: true },
  spentDollars: 0,
  instancePerHour: 3.6,
  requestDollarsPerEntry: 0,
  bootSec: 60,
};

interface Row {
  readonly name: string;
  readonly input: Partial<SizingInput>;
  readonly action: ReturnType<typeof decide>["action"];
  readonly workers: number;
  readonly missed?: boolean;
  readonly reason: RegExp;
  /** The forecast end, in seconds from now, when one is told. */
  readonly endSec?: number | null;
}

const rows: Row[] = [
  {
    name: "behind the deadline, it launches the fewest that meet it, counting the boot time",
    // 2 workers do 1,200 entries while the new ones boot; 4 do the other 4,800 in 120 s: 180 s. 3 take 220 s.
    input: {},
    action: { type: "launch", count: 2 },
    workers: 4,
    reason:
      /2 workers end at 1970-01-01T00:05:00Z, after the deadline 1970-01-01T00:03:20Z; 4 end at 1970-01-01T00:03:00Z/,
    endSec: 180,
  },
  {
    name: "instances still booting count as workers at the measured rate: nothing more is launched",
    input: { booting: 2 },
    action: { type: "hold" },
    workers: 4,
    reason: /4 workers end at .*, before the deadline/,
    endSec: 180,
  },
  {
    name: "ahead of the deadline, it drains the slowest workers it does not need",
    // One worker alone ends at 600 s, within the deadline less a fifth of the time left (800 s).
    input: {
      deadlineMs: 1_000_000,
      workers: [worker("w-a", 10), worker("w-b", 9), worker("w-c", 11), worker("w-d", 10)],
    },
    action: { type: "drain", ids: ["w-b", "w-a", "w-d"] },
    workers: 1,
    reason: /ahead of the deadline .*: 1 workers end at .*; draining 3/,
    endSec: 600,
  },
  {
    name: "ahead, but not by the margin: it holds rather than drain and miss by a noisy rate",
    // One worker would end at 600 s; the deadline is at 650 s, and 600 > 650 - 0.2 × 650.
    input: { deadlineMs: 650_000 },
    action: { type: "hold" },
    workers: 2,
    reason: /2 workers end at .*, before the deadline/,
    endSec: 300,
  },
  {
    name: "a deadline that cannot be met within the budget is said at once, and the run goes on at the budget's size",
    // 1 or 2 workers cost $0.60 (600 instance-seconds), 3 cost $0.66: the budget $0.65 buys 2, which end at 300 s.
    input: { budgetDollars: 0.65 },
    action: { type: "hold" },
    workers: 2,
    missed: true,
    reason:
      /the deadline .* cannot be met within the budget: 4 workers would meet it at \$0\.72; running at the budget's size, 2, to end at 1970-01-01T00:05:00Z/,
    endSec: 300,
  },
  {
    name: "a deadline that even --max-workers cannot meet: it launches up to the maximum and says so",
    input: { maxWorkers: 3 },
    action: { type: "launch", count: 1 },
    workers: 3,
    missed: true,
    reason: /the deadline .* cannot be met: even 3 workers end at 1970-01-01T00:03:40Z/,
    endSec: 220,
  },
  {
    name: "S3's per-prefix PUT rate caps the fleet: workers beyond 3,500 PUT/s would not help",
    input: {
      workers: [worker("w-a", 1_000), worker("w-b", 1_000)],
      remaining: { entries: 3_000_000, bytes: 0, validateEntries: 0 },
      deadlineMs: 100_000,
      bootSec: 0,
    },
    action: { type: "launch", count: 2 },
    workers: 4,
    missed: true,
    reason: /cannot be met: even 4 workers end at .*S3's 3500 PUT\/s per prefix caps the fleet at 4/,
    endSec: 3_000_000 / 3_500,
  },
  {
    name: "while the crawl runs and the fleet keeps up with it, the crawl is the bottleneck: it adds no worker",
    input: { crawl: { done: false, entriesPerSec: 15, found: 900 } },
    action: { type: "hold" },
    workers: 2,
    reason:
      /the crawl is the bottleneck: it finds 15 entries\/s and the fleet does 20; more workers would not help/,
    endSec: null,
  },
  {
    name: "while the crawl runs faster than the fleet, it launches enough to keep up with the crawl",
    input: { crawl: { done: false, entriesPerSec: 55, found: 900 } },
    action: { type: "launch", count: 4 },
    workers: 6,
    reason: /the fleet falls behind the crawl \(55 entries\/s found, 20 done\): 6 workers keep up/,
    endSec: null,
  },
  {
    name: "with the plan's expected total, the crawl's rest is extrapolated: the crawl's end bounds the forecast",
    // 60,000 entries expected, 900 found at 15/s: the crawl ends in 3,940 s whatever the fleet.
    input: {
      crawl: { done: false, entriesPerSec: 15, found: 900, expectedEntries: 60_000 },
      deadlineMs: 3_600_000,
    },
    action: { type: "launch", count: 8 },
    workers: 10,
    missed: true,
    reason: /cannot be met: even 10 workers end at/,
    endSec: (60_000 - 900) / 15,
  },
  {
    name: "a byte-heavy rest is paced by the measured bytes per second, not the entries",
    // 100 MB left at 1 MB/s per worker: 4 workers take 25 s; 2 would take 50 s; the entries alone 5 s.
    input: {
      workers: [worker("w-a", 100, 1e6), worker("w-b", 100, 1e6)],
      remaining: { entries: 1_000, bytes: 100e6, validateEntries: 0 },
      deadlineMs: 30_000,
      bootSec: 0,
    },
    action: { type: "launch", count: 2 },
    workers: 4,
    reason: /2 workers end at 1970-01-01T00:00:50Z, after the deadline .*; 4 end at 1970-01-01T00:00:25Z/,
    endSec: 25,
  },
  {
    name: "VALIDATE's checks are part of the rest",
    // 6,000 writes and 6,000 checks at 20 entries/s: 600 s, past a deadline at 500 s; 3 workers: 60 + (10,800 / 30).
    input: { remaining: { entries: 6_000, bytes: 0, validateEntries: 6_000 }, deadlineMs: 500_000 },
    action: { type: "launch", count: 1 },
    workers: 3,
    reason: /2 workers end at 1970-01-01T00:10:00Z/,
    endSec: 420,
  },
  {
    name: "with a budget and no deadline, it runs the fastest fleet the budget allows",
    // n workers cost about $0.60 for the work plus their boot; a generous budget buys the --max-workers.
    input: { deadlineMs: null, budgetDollars: 100, maxWorkers: 5 },
    action: { type: "launch", count: 3 },
    workers: 5,
    reason: /the fastest fleet the budget allows/,
    endSec: 60 + 4_800 / 50,
  },
  {
    name: "before any worker has a result, it holds",
    input: { workers: [worker("w-a", null), worker("w-b", null)] },
    action: { type: "hold" },
    workers: 2,
    reason: /no rate measured yet/,
    endSec: null,
  },
  {
    name: "an instance still booting is not billed EC2's minimum twice: what it cost so far is in the spent dollars",
    // $36 an hour, a budget of $1.80, $1.20 spent (each instance's first minute). Two workers (one booting) end in
    // 18.25 s: 36.5 instance-seconds more, $1.57 in all; a third costs its own minute: $2.07. Billing the booting
    // one a minute again would price two at $1.98 and drain the one that works.
    input: {
      deadlineMs: null,
      budgetDollars: 1.8,
      maxWorkers: 4,
      instancePerHour: 36,
      bootSec: 4,
      workers: [worker("w-a", 4)],
      booting: 1,
      spentDollars: 1.2,
      remaining: { entries: 50, bytes: 0, validateEntries: 80 },
    },
    action: { type: "hold" },
    workers: 2,
    reason: /the budget \$1\.8 allows 2/,
  },
];

describe("the fleet's sizing decision", () => {
  for (const row of rows) {
    it(row.name, () => {
      const d = decide({ ...base, ...row.input });
      assert.deepEqual(d.action, row.action, d.reason);
      assert.equal(d.workers, row.workers, d.reason);
      assert.equal(d.deadlineMissed, row.missed ?? false, d.reason);
      assert.match(d.reason, row.reason);
      if (row.endSec === null) assert.equal(d.forecastEndMs, null);
      else if (row.endSec !== undefined) {
        assert.ok(d.forecastEndMs !== null, d.reason);
        assert.ok(Math.abs(d.forecastEndMs / 1000 - row.endSec) < 0.01, `${d.forecastEndMs} ms: ${d.reason}`);
      }
    });
  }

  it("the forecast cost counts what was spent, every instance's seconds, and the requests left", () => {
    const d = decide({ ...base, spentDollars: 1, requestDollarsPerEntry: 0.0001, deadlineMs: 10_000_000 });
    // Drained to one worker (600 s at $0.001/s) plus 6,000 × $0.0001 plus the $1 spent.
    assert.deepEqual(d.action, { type: "drain", ids: ["w-a"] });
    assert.ok(d.forecastDollars !== null);
    assert.ok(Math.abs(d.forecastDollars - (1 + 0.6 + 0.6)) < 1e-9, String(d.forecastDollars));
  });
});

describe("--deadline", () => {
  const start = Date.parse("2026-12-02T04:00:00Z");
  for (const [text, at] of [
    ["2h", "2026-12-02T06:00:00.000Z"],
    ["90m", "2026-12-02T05:30:00.000Z"],
    ["1h30m", "2026-12-02T05:30:00.000Z"],
    ["45s", "2026-12-02T04:00:45.000Z"],
    ["2026-12-02T07:15:00Z", "2026-12-02T07:15:00.000Z"],
    ["2026-12-02T08:15:00+01:00", "2026-12-02T07:15:00.000Z"],
  ] as const) {
    it(`reads ${text} as ${at}`, () => {
      assert.equal(new Date(deadlineAt(text, start)).toISOString(), at);
    });
  }
  it("refuses what is neither a duration nor a time with its zone", () => {
    for (const bad of ["", "2", "2 h", "h", "tomorrow", "2026-12-02T07:15:00", "2026-12-02"]) {
      assert.equal(DEADLINE_SHAPE.test(bad), false, bad);
      assert.throws(() => deadlineAt(bad, start), /not a deadline/);
    }
  });
});
