/**
 * Per-prefix pacing against a stand-in for S3's request rate: a proxy in front of the emulator answers 503
 * SlowDown past N writes per second to one prefix. A local run of many files in two directories (two hot
 * prefixes) completes with nothing failed, every object in the bucket, and the rate the workers sent at, as
 * the proxy measured it, settled under N.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startLocal } from "../helpers/run.ts";
import { type PrefixSecond, startSlowDownProxy } from "../helpers/slowdown-proxy.ts";

/**
 * Writes per second per prefix that the stand-in lets through: low enough that two workers go past it even on
 * a loaded machine, and the climb step scaled to it as one would to S3's 3,500 (see the README's tuning).
 */
const N = 20;
const STEP = 4;
const FILES_PER_DIR = 300;
const HOT = ["hot-a", "hot-b"];
/** Seconds of a prefix's load left for the pacing to settle before its rate is measured. */
const SETTLE_SEC = 4;

describe("per-prefix pacing", { timeout: 180_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let src: string;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-pace-"));
    src = path.join(tmp, "src");
    for (const d of HOT) {
      await fs.mkdir(path.join(src, d), { recursive: true });
      await Promise.all(
        Array.from({ length: FILES_PER_DIR }, (_, i) =>
          fs.writeFile(path.join(src, d, `f${i}.txt`), `${d} ${i}\n`),
        ),
      );
    }
    await fs.mkdir(path.join(src, "calm"));
    await fs.writeFile(path.join(src, "calm", "one.txt"), "one\n");
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const keysIn = async (bucket: string) => {
    let n = 0;
    let token: string | undefined;
    do {
      const out = await aws.clients.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
      );
      n += out.KeyCount ?? 0;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return n;
  };

  it(`a run of two hot directories behind ${N} writes/s per prefix completes with nothing failed, its rate per prefix settled under ${N}`, async (t) => {
    const proxy = await startSlowDownProxy(aws.emulator.url, N);
    let timeline: Map<string, PrefixSecond[]>;
    let report: RunReport;
    const started = Date.now();
    try {
      const run = startLocal({
        endpoint: proxy.url,
        dir: tmp,
        name: "pace",
        source: src,
        target: "s3://paced/p",
        args: ["--workers", "2", "--target-empty", "--prefix-rate-step", String(STEP)],
      });
      const { code } = await run.exited;
      assert.equal(code, 0, run.stderr().slice(-3000));
      report = await run.report();
      timeline = proxy.timeline();
    } finally {
      await proxy.close();
    }
    const entries = HOT.length * (FILES_PER_DIR + 1) + 2 + 1; // the hot directories, calm/ and its file, the root
    t.diagnostic(`run took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors.slice(0, 5)));
    assert.deepEqual(report.write, { ok: entries, failed: 0, skipped: 0, unchanged: 0 });
    assert.deepEqual(report.validate, { ok: entries, failed: 0 });
    assert.equal(await keysIn("paced"), entries, "an object for every entry (the root is the prefix's own)");

    for (const d of HOT) {
      const seconds = timeline.get(`paced/p/${d}/`) ?? [];
      const shown = seconds.map((s) => `${s.arrived}/${s.refused}`).join(" ");
      t.diagnostic(`${d}: writes arrived/refused per second: ${shown}`);
      const refused = seconds.reduce((sum, s) => sum + s.refused, 0);
      assert.ok(refused > 0, `${d}: the workers went past ${N}/s at first and were told to slow down`);
      const arrived = seconds.reduce((sum, s) => sum + s.arrived, 0);
      assert.ok(arrived >= FILES_PER_DIR, `${d}: every file was written through the proxy`);
      // Past the settling time, the whole seconds of the load (not its last, partial one).
      const first = seconds[0]?.second ?? 0;
      const last = seconds.at(-1)?.second ?? 0;
      const settled = seconds.filter((s) => s.second >= first + SETTLE_SEC && s.second < last);
      assert.ok(settled.length >= 3, `${d}: the load lasted long enough to settle (${shown})`);
      const span = last - (first + SETTLE_SEC);
      const rate = settled.reduce((sum, s) => sum + s.arrived, 0) / span;
      assert.ok(rate <= N * 1.1, `${d}: settled at ${rate.toFixed(1)} writes/s, over ${N} × 1.1 (${shown})`);
      assert.ok(rate >= N * 0.2, `${d}: still loaded while measured, at ${rate.toFixed(1)}/s (${shown})`);
    }
  });
});
