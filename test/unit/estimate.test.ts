import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addItem, busiestDirs, type DirTally, emptyCensus, partsOf, tallyDir } from "../../plan/census.ts";
import {
  type EstimateInput,
  estimate,
  hotPrefixes,
  S3_PUT_PER_SEC,
  scaleWorkload,
} from "../../plan/estimate.ts";
import { DEFAULT_PRICES, INSTANCE_TYPES } from "../../plan/prices.ts";
import { storageEstimate } from "../../plan/storage-estimate.ts";

const c6i = INSTANCE_TYPES["c6i.large"];
if (!c6i) throw new Error("c6i.large is in the price table");

const input = (over: Partial<EstimateInput> = {}): EstimateInput => ({
  workload: {
    entries: 1_000_000,
    files: 950_000,
    dirs: 49_000,
    symlinks: 1_000,
    bytes: 500e9,
    multipartFiles: 0,
    multipartParts: 0,
  },
  fleet: {
    workers: 10,
    instanceType: "c6i.large",
    instance: c6i,
    volumeGiB: 100,
    filesPerSecPerWorker: 300,
    checksPerSecPerWorker: 600,
    bootSec: 300,
  },
  target: { kind: "s3", empty: false },
  prices: DEFAULT_PRICES,
  sqsRequestsPerEntry: 0.03,
  ...over,
});

describe("the plan's estimate", () => {
  it("counts one PUT per entry, a HEAD before each write and one in VALIDATE, and SQS by the measured rate", () => {
    const e = estimate(input());
    assert.equal(e.requests.put, 1_000_000);
    assert.equal(e.requests.head, 2_000_000);
    assert.equal(e.requests.sqs, 30_000);
    assert.equal(e.cost.s3Put, 5); // 1,000 × $0.005
    assert.equal(e.cost.s3Head, 0.8); // 2,000 × $0.0004
    assert.ok(Math.abs(e.cost.sqs - 0.012) < 1e-9);
  });

  it("skips the HEAD before writing into an empty target, and prices a multipart upload's parts", () => {
    const e = estimate(
      input({
        target: { kind: "s3", empty: true },
        workload: { ...input().workload, multipartFiles: 10, multipartParts: 1_000 },
      }),
    );
    assert.equal(e.requests.head, 1_000_000);
    // Each multipart file: create + its parts + complete instead of one PUT.
    assert.equal(e.requests.put, 1_000_000 - 10 + 20 + 1_000);
  });

  it("takes WRITE's time from the slower of files and network, with S3's PUT rate as a cap", () => {
    const e = estimate(input());
    // 10 × 300 files/s = 3,000 files/s → 333 s; 500 GB at 10 × 97 MB/s → 515 s: the network decides.
    assert.equal(e.writeLimitedBy, "network");
    assert.ok(Math.abs(e.seconds.write - 500e9 / 1e6 / 970) < 1e-6);
    const small = estimate(
      input({ workload: { ...input().workload, bytes: 1e9 }, fleet: { ...input().fleet, workers: 40 } }),
    );
    assert.equal(small.writeLimitedBy, "s3-put-rate");
    assert.equal(small.fleetFilesPerSec, S3_PUT_PER_SEC);
    assert.equal(small.seconds.total, small.seconds.boot + small.seconds.write + small.seconds.validate);
  });

  it("bills the fleet's instance-hours (a minute at least) and volumes, and compares with DataSync per GB", () => {
    const e = estimate(input());
    assert.ok(Math.abs(e.instanceHours - (10 * e.seconds.total) / 3600) < 1e-9);
    assert.ok(Math.abs(e.cost.ec2 - e.instanceHours * 0.085) < 1e-9);
    assert.ok(Math.abs(e.cost.ebs - (e.instanceHours * 100 * 0.08) / 730) < 1e-9);
    assert.ok(Math.abs(e.dataSync.basic - (500 * 0.0125 + e.cost.s3Put + e.cost.s3Head)) < 1e-9);
    const tiny = estimate(
      input({
        workload: { ...input().workload, entries: 1, files: 1, bytes: 1 },
        fleet: { ...input().fleet, bootSec: 0 },
      }),
    );
    assert.ok(Math.abs(tiny.instanceHours - (10 * 60) / 3600) < 1e-9);
  });

  it("scales a sample to the whole tree", () => {
    const w = scaleWorkload(
      {
        entries: 100,
        files: 90,
        dirs: 9,
        symlinks: 1,
        bytes: 1_000,
        multipartFiles: 1,
        multipartParts: 2,
        smallFiles: 30,
        smallBytes: 300,
      },
      10_000,
    );
    assert.deepEqual(w, {
      entries: 10_000,
      files: 9_000,
      dirs: 900,
      symlinks: 100,
      bytes: 100_000,
      multipartFiles: 100,
      multipartParts: 200,
      smallFiles: 3_000,
      smallBytes: 30_000,
    });
  });

  it("counts a census: histogram, multipart parts, long keys, what the report will list", () => {
    const c = emptyCensus();
    const o = {
      keyPrefix: "imports",
      multipartThresholdBytes: 8 * 1024 * 1024,
      minPartBytes: 8 * 1024 * 1024,
    };
    const f = (p: string, size: number) =>
      addItem(c, { type: "entry", entry: { path: p, kind: "file", size, mtimeNs: "0" } }, o);
    f("empty", 0);
    f("small", 100);
    f("big", 20 * 1024 * 1024);
    f("x".repeat(1020), 5);
    addItem(
      c,
      {
        type: "issue",
        issue: { path: "p", reason: "special file (fifo): not copied" },
        outcome: "skipped",
        isEntry: true,
      },
      o,
    );
    addItem(
      c,
      {
        type: "issue",
        issue: { path: "bad\\xff", reason: "name is not valid UTF-8 and cannot become an S3 key" },
        outcome: "failed",
        isEntry: true,
      },
      o,
    );
    assert.equal(c.entries, 6);
    assert.equal(c.files, 4);
    assert.deepEqual(
      c.histogram.map((h) => h.files),
      [1, 2, 0, 0, 0, 1, 0, 0, 0],
    );
    assert.equal(c.multipartFiles, 1);
    assert.equal(c.multipartParts, 3);
    assert.deepEqual(c.keysTooLong, ["x".repeat(1020)]);
    assert.deepEqual(c.specialFiles, ["p"]);
    assert.deepEqual(c.nonUtf8Names, ["bad\\xff"]);
    assert.equal(partsOf(200 * 1024 ** 3, 8 * 1024 * 1024) <= 10_000, true);
  });

  it("tallies the entries of each directory of its own, the root's as '.'", () => {
    const c = emptyCensus();
    const o = { keyPrefix: "", multipartThresholdBytes: 1e12, minPartBytes: 1 };
    const e = (p: string, kind: "file" | "dir" = "file") =>
      addItem(c, { type: "entry", entry: { path: p, kind, size: 1, mtimeNs: "0" } }, o);
    e(".", "dir");
    e("top.txt");
    e("a", "dir");
    for (const f of ["1", "2", "3"]) e(`a/${f}`);
    e("a/b", "dir");
    e("a/b/x");
    assert.deepEqual(busiestDirs(c), [
      { dir: "a", entries: 4 },
      { dir: ".", entries: 2 },
      { dir: "a/b", entries: 1 },
    ]);
    assert.deepEqual(busiestDirs(c, 2), [
      { dir: "a", entries: 4 },
      { dir: ".", entries: 2 },
    ]);
  });

  it("finds the big directories among many more than it tallies, in bounded space, never overcounting them", () => {
    const tally: DirTally[] = [];
    // 10,000 directories of 3 entries, and 3 big ones of 20,000, 10,000 and 5,000 spread among them.
    const big = [
      ["big-1", 20_000],
      ["big-2", 10_000],
      ["big-3", 5_000],
    ] as const;
    const left = new Map<string, number>(big);
    for (let d = 0; d < 10_000; d++) {
      for (let i = 0; i < 3; i++) tallyDir(tally, `small-${d}`, 32);
      for (const [name] of big) {
        const n = Math.min(left.get(name) ?? 0, name === "big-1" ? 2 : 1);
        for (let i = 0; i < n; i++) tallyDir(tally, name, 32);
        left.set(name, (left.get(name) ?? 0) - n);
      }
    }
    assert.equal(tally.length, 32);
    const found = busiestDirs({ ...emptyCensus(), dirTally: tally }, 1_000);
    assert.deepEqual(
      found.map((d) => d.dir),
      ["big-1", "big-2", "big-3"],
    );
    for (const d of found) {
      const truth = big.find(([name]) => name === d.dir)?.[1] ?? 0;
      assert.ok(d.entries <= truth && d.entries >= truth - 65_000 / 32, `${d.dir}: ${d.entries} of ${truth}`);
    }
  });

  for (const [name, workers, kind, dirs, expected] of [
    ["a fleet under one prefix's rate: no warning", 10, "s3", [{ dir: "huge", entries: 1e6 }], []],
    [
      "a fleet over it: the directories of a second's worth or more",
      20,
      "s3",
      [
        { dir: "huge", entries: 1e6 },
        { dir: "mid", entries: 3_500 },
        { dir: "small", entries: 3_499 },
      ],
      ["huge", "mid"],
    ],
    ["through a yas3fs mount, two PUTs per file", 6, "mount", [{ dir: "huge", entries: 1e6 }], ["huge"]],
    ["the same fleet writing objects directly", 6, "s3", [{ dir: "huge", entries: 1e6 }], []],
  ] as const) {
    it(`warns about directories that need more than one prefix's PUT rate (${name})`, () => {
      const i = input({
        fleet: { ...input().fleet, workers, filesPerSecPerWorker: 300 },
        target: { kind, empty: true },
        busiestDirs: dirs,
      });
      const hot = hotPrefixes(i);
      assert.deepEqual(
        hot.map((h) => h.dir),
        expected,
      );
      assert.deepEqual(estimate(i).hotPrefixes, hot);
      for (const h of hot) {
        const puts = workers * 300 * (kind === "s3" ? 1 : 2);
        assert.equal(h.putPerSec, puts);
        assert.ok(puts > S3_PUT_PER_SEC);
        assert.ok(
          Math.abs(h.secondsAtPrefixRate - (h.entries * (kind === "s3" ? 1 : 2)) / S3_PUT_PER_SEC) < 1e-9,
        );
        assert.ok(h.secondsAtFleetRate < h.secondsAtPrefixRate);
      }
    });
  }
});

describe("the storage estimate, by class", () => {
  // 1,000 entries: 900 files of 1 GB in all, 400 of them under 128 KiB (40 MB), 100 directories.
  const w = {
    entries: 1_000,
    files: 900,
    dirs: 100,
    symlinks: 0,
    bytes: 1e9,
    multipartFiles: 10,
    multipartParts: 40,
    smallFiles: 400,
    smallBytes: 4e7,
  };
  const plain = { tags: 0, kms: false, customerKey: false };
  const cases: [
    string,
    Parameters<typeof storageEstimate>[1],
    Partial<ReturnType<typeof storageEstimate>>,
  ][] = [
    [
      "STANDARD bills the bytes",
      { ...plain, storageClass: "STANDARD" },
      { billedGb: 1, perMonth: 0.023, minDays: 0 },
    ],
    [
      "STANDARD_IA bills each small object as 128 KiB, for 30 days at least",
      { ...plain, storageClass: "STANDARD_IA" },
      { billedGb: (1e9 + 400 * 131_072 - 4e7) / 1e9, minDays: 30 },
    ],
    [
      "DEEP_ARCHIVE adds 32 KiB per file at its price and 8 KiB at STANDARD's, for 180 days",
      { ...plain, storageClass: "DEEP_ARCHIVE" },
      {
        perMonth: ((1e9 + 900 * 32_768) / 1e9) * 0.00099 + ((900 * 8_192) / 1e9) * 0.023,
        minDays: 180,
      },
    ],
    [
      "INTELLIGENT_TIERING monitors the files of 128 KiB or more",
      { ...plain, storageClass: "INTELLIGENT_TIERING" },
      { monitoringPerMonth: (500 / 1000) * 0.0025 },
    ],
    [
      "tags cost per tag and month; a customer key a dollar a month",
      { storageClass: "STANDARD", tags: 3, kms: true, customerKey: true },
      {
        tagsPerMonth: ((1_000 * 3) / 10_000) * 0.01,
        kmsKeyPerMonth: 1,
        kmsWithoutBucketKeys: (1_010 / 10_000) * 0.03,
      },
    ],
  ];
  for (const [name, o, want] of cases) {
    it(name, () => {
      const got = storageEstimate(w, o);
      for (const [k, v] of Object.entries(want)) {
        assert.ok(
          Math.abs((got[k as keyof typeof got] as number) - (v as number)) < 1e-9,
          `${k}: ${got[k as keyof typeof got]} vs ${v}`,
        );
      }
      assert.ok(Math.abs(got.minimumCharge - (got.perMonth * got.minDays) / 30) < 1e-12);
    });
  }
});
