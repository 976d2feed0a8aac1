/**
 * A Spot interruption with real processes: a master and two workers on the emulator, each worker watching its
 * own IMDSv2 stand-in on 127.0.0.1 (test/helpers/imds.ts; no emulator of the metadata service exists). One
 * worker gets EC2's notice mid-WRITE: it takes no new batch, finishes what it holds, reports, says goodbye
 * with the reason and exits 0; the other finishes the load. Every entry is written once and verified once.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureRunResources } from "../../core/aws/resources.ts";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type Imds, startImds } from "../helpers/imds.ts";
import { type Proc, startCli } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

describe("a Spot interruption notice", { timeout: 600_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let source: string;
  let entries: number;
  const imds: Imds[] = [];
  const started: Proc[] = [];

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-spot-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 2_500, largeFiles: 0, seed: 17 });
    entries = (await listTree(source)).length + 1; // and the root itself
  });

  after(async () => {
    for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    for (const i of imds) await i.close();
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("mid-WRITE drains its worker: nothing redone, nothing lost, and the report names the worker drained", async (t) => {
    // A visibility timeout far above the run's length: a batch handed out twice could only be one put back.
    const r = await ensureRunResources(aws.clients, "spot", {
      tocVisibilityTimeoutSec: 300,
      maxReceiveCount: 5,
    });
    const env = {
      AWS_ENDPOINT_URL: aws.emulator.url,
      S3BL_TOPIC_ARN: r.topicArn,
      S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
      S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
      S3BL_RUN_ID: "spot-run",
    };
    const target = path.join(tmp, "dst");
    const reportFile = path.join(tmp, "spot.json");
    const track = (p: Proc) => {
      started.push(p);
      return p;
    };
    const master = track(
      startCli(
        [
          "master",
          "--source",
          source,
          "--workers",
          "2",
          "--batch-entries",
          "10",
          "--worker-timeout-sec",
          "30",
          "--beacon-ms",
          "500",
          "--progress-ms",
          "200",
          "--dead-letter-queue-url",
          r.deadLetterQueueUrl,
          "--state-dir",
          path.join(tmp, "state"),
          "--report",
          reportFile,
        ],
        { env },
      ),
    );
    const [quiet, noticed] = [await startImds(), await startImds()];
    imds.push(quiet, noticed);
    const worker = (id: string, metadata: Imds) =>
      track(
        startCli(
          [
            "worker",
            "--source",
            source,
            "--target",
            target,
            "--worker-id",
            id,
            "--concurrency",
            "2",
            "--report-ms",
            "200",
            "--heartbeat-ms",
            "500",
            "--spot-notice",
            "--imds-endpoint",
            metadata.url,
            "--spot-notice-poll-ms",
            "200",
          ],
          { env },
        ),
      );
    const stays = worker("spot1", quiet);
    const leaves = worker("spot2", noticed);

    await master.waitFor(
      (l) => l.event === "progress" && l.phase === "WRITE" && Number(l.written) >= 300,
      120_000,
    );
    noticed.notice("terminate", new Date(Date.now() + 120_000));
    await leaves.waitFor((l) => /Spot interruption notice \(terminate at /.test(String(l.msg)), 30_000);
    const left = await leaves.exited;
    assert.equal(left.code, 0, leaves.stderr().slice(-3000));

    assert.equal((await master.exited).code, 0, master.stderr().slice(-4000));
    assert.equal((await stays.exited).code, 0, stays.stderr().slice(-2000));
    const report = JSON.parse(await fs.readFile(reportFile, "utf8")) as RunReport;

    // Nothing lost: every entry written and verified.
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors.slice(0, 5)));
    assert.equal(report.write.ok, entries);
    assert.deepEqual(report.validate, { ok: entries, failed: 0 });
    assert.deepEqual(await diffTrees(source, target, { owner: process.getuid?.() === 0 }), []);
    // Nothing redone: the workers' own counts of what they wrote add up to every entry exactly once.
    const byId = Object.fromEntries(report.workers.map((w) => [w.id, w]));
    const wrote = (id: string) => {
      const t = byId[id]?.write;
      return t ? t.ok + t.unchanged + t.failed + t.skipped : 0;
    };
    assert.ok(wrote("spot2") > 0 && wrote("spot2") < entries, `spot2 wrote ${wrote("spot2")} of ${entries}`);
    assert.equal(wrote("spot1") + wrote("spot2"), entries);
    assert.equal(report.delivery.duplicates, 0);
    // A batch it received as the notice came is put back untouched (visibility 0): the only ones handed out twice.
    const putBack = leaves.lines
      .filter((l) => /the worker is stopping/.test(String(l.msg)))
      .reduce((n, l) => n + Number(l.putBack), 0);
    assert.ok(
      !leaves.lines.some((l) => /put back \d+ unfinished/.test(String(l.msg))),
      "nothing cut off at the bound",
    );
    t.diagnostic(
      `spot2 wrote ${wrote("spot2")} of ${entries} entries, put back ${putBack} batch(es) untouched`,
    );
    assert.equal(
      report.delivery.redelivered,
      putBack,
      "no batch was handed out twice but those put back untouched",
    );
    assert.equal(byId.spot2?.validate.ok, 0, "the drained worker took no VALIDATE batch");

    // Drained, not lost; the report says so.
    assert.equal(byId.spot2?.state, "STOPPED");
    assert.equal(byId.spot2?.lostAt, null);
    assert.equal(byId.spot2?.stopped?.reason, "spot interruption");
    assert.match(byId.spot2?.stopped?.detail ?? "", /^spot interruption: drained/);
    assert.ok(
      report.notes.some((n) =>
        /worker spot2 on .* drained at .* in WRITE after a Spot interruption notice/.test(n),
      ),
      report.notes.join("\n"),
    );
    assert.equal(byId.spot1?.stopped?.reason, "run over");
    assert.match(master.stderr(), /1 drained after a Spot interruption \(spot2\)/);

    // IMDSv2: a token first, then the notice asked for with it; the quiet worker heard 404 throughout.
    assert.equal(noticed.requests[0], "PUT /latest/api/token 200");
    assert.ok(noticed.requests.includes("GET /latest/meta-data/spot/instance-action 200"));
    assert.ok(quiet.requests.filter((q) => q.endsWith("404")).length >= 2);
    assert.ok(!quiet.requests.some((q) => q.endsWith(" 401")), "every request carried a valid token");
  });
});
