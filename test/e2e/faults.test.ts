/**
 * Faults with real processes: a worker killed with SIGKILL in the middle of WRITE, and a local run
 * interrupted with SIGINT. Waits are on what the programs print, never on fixed sleeps.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureRunResources } from "../../core/aws/resources.ts";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startCli } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

const isRoot = process.getuid?.() === 0;

describe("faults", { timeout: 300_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let source: string;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-faults-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 2_500, largeFiles: 0, seed: 3 });
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("a worker killed with SIGKILL mid-WRITE loses nothing: its batches are redone and counted once", async () => {
    const r = await ensureRunResources(aws.clients, "kill", {
      tocVisibilityTimeoutSec: 3,
      maxReceiveCount: 5,
    });
    const env = {
      AWS_ENDPOINT_URL: aws.emulator.url,
      S3BL_TOPIC_ARN: r.topicArn,
      S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
      S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
      S3BL_RUN_ID: "kill-run",
    };
    const target = path.join(tmp, "dst-kill");
    const reportFile = path.join(tmp, "kill.json");
    const master = startCli(
      [
        "master",
        "--source",
        source,
        "--workers",
        "3",
        "--batch-entries",
        "10",
        "--worker-timeout-sec",
        "3",
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
    );
    const workers = [1, 2, 3].map((i) =>
      startCli(
        [
          "worker",
          "--source",
          source,
          "--target",
          target,
          "--worker-id",
          `k${i}`,
          "--concurrency",
          "2",
          "--report-ms",
          "200",
          "--heartbeat-ms",
          "500",
        ],
        { env },
      ),
    );
    const [victim, ...others] = workers;
    assert.ok(victim);
    await master.waitFor((l) => l.event === "progress" && l.phase === "WRITE" && Number(l.written) >= 300);
    victim.child.kill("SIGKILL");

    const { code } = await master.exited;
    assert.equal(code, 0, master.stderr().slice(-4000));
    for (const w of others) assert.equal((await w.exited).code, 0, w.stderr().slice(-2000));

    const report: RunReport = JSON.parse(await fs.readFile(reportFile, "utf8"));
    const entries = (await listTree(source)).length + 1; // and the root itself
    assert.equal(report.outcome, "succeeded");
    assert.deepEqual(report.write, { ok: entries, failed: 0, skipped: 0, unchanged: 0 });
    assert.deepEqual(report.validate, { ok: entries, failed: 0 });
    assert.deepEqual(await diffTrees(source, target, { owner: isRoot }), []);
    const lost = report.workers.filter((w) => w.state === "LOST").map((w) => w.id);
    assert.deepEqual(lost, ["k1"]);
    assert.ok(
      report.notes.some((n) => /worker k1 .* vanished in WRITE/.test(n)),
      report.notes.join("\n"),
    );
    assert.ok(report.delivery.redelivered >= 1, "the killed worker's batch was handed out again");
    assert.ok(
      report.workers.reduce((n, w) => n + w.write.ok, 0) >= entries,
      "the workers' own totals include the redone work",
    );
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-")),
      [],
      "the master removed the dead worker's control queue",
    );
  });

  it("Ctrl-C on a local run stops it with a partial report, exit 130, and no process or queue left", async () => {
    const runId = `intr-${process.pid}`;
    const reportFile = path.join(tmp, "intr.json");
    const local = startCli([
      "local",
      "--endpoint-url",
      aws.emulator.url,
      "--source",
      source,
      "--target",
      path.join(tmp, "dst-intr"),
      "--workers",
      "2",
      "--concurrency",
      "1",
      "--batch-entries",
      "5",
      "--run-id",
      runId,
      "--progress-ms",
      "200",
      "--state-dir",
      path.join(tmp, "state"),
      "--name-prefix",
      "intr",
      "--report",
      reportFile,
    ]);
    await local.waitFor((l) => l.event === "progress" && l.phase === "WRITE" && Number(l.written) >= 50);
    local.child.kill("SIGINT");
    const { code } = await local.exited;
    assert.equal(code, 130, local.stderr().slice(-3000));

    const report: RunReport = JSON.parse(await fs.readFile(reportFile, "utf8"));
    assert.equal(report.outcome, "interrupted");
    assert.ok(report.write.ok >= 50);
    assert.ok(report.write.ok < (await listTree(source)).length, "stopped before the end");
    assert.deepEqual(processesWith(runId), [], "no worker process is left");
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-")),
      [],
    );
    assert.equal(await aws.subscriptionCount(), 0);
  });
});

/** Pids of live processes whose command line mentions `needle`. */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(needle)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
