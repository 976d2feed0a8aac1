/**
 * The master's bounds, with a real master and real workers as processes over the emulator: a poison batch
 * without `--dead-letter-queue-url` ends through the dead-letter queue the TOC queue's RedrivePolicy names; a
 * worker frozen (SIGSTOP) while it holds batches ends the run at the stall limit, with the batches named; a
 * before-VALIDATE hook that fails on every worker fails the run at once, the hook's failure in the report.
 * Each asserts the exit code and that every entry is accounted for.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { ensureRunResources, type RunResources } from "../../core/aws/resources.ts";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type Proc, startCli } from "../helpers/run.ts";
import { listTree } from "../helpers/tree.ts";

describe("the master's limits", { timeout: 600_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let source: string;
  let entries: number;
  let dirs: number;
  const started: Proc[] = [];

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-limits-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 800, largeFiles: 0, seed: 11 });
    const all = await listTree(source);
    entries = all.length + 1; // and the root itself
    const stats = await Promise.all(all.map((p) => fs.lstat(path.join(source, p))));
    dirs = stats.filter((st) => st.isDirectory()).length + 1;
  });

  after(async () => {
    for (const p of started) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill("SIGCONT");
        p.child.kill("SIGKILL");
      }
    }
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  interface Cluster {
    readonly r: RunResources;
    readonly master: Proc;
    readonly workers: Proc[];
    report(): Promise<RunReport>;
  }

  /** A master (never given the dead-letter queue's URL) and workers as processes, on queues of their own. */
  const cluster = async (
    name: string,
    o: {
      workers: number;
      maxReceiveCount?: number;
      visibilitySec?: number;
      workerTimeoutSec?: number;
      masterArgs?: string[];
      workerArgs?: string[];
      before?: (r: RunResources) => Promise<void>;
    },
  ): Promise<Cluster> => {
    const r = await ensureRunResources(aws.clients, name, {
      tocVisibilityTimeoutSec: o.visibilitySec ?? 3,
      maxReceiveCount: o.maxReceiveCount ?? 5,
    });
    await o.before?.(r);
    const env = {
      AWS_ENDPOINT_URL: aws.emulator.url,
      S3BL_TOPIC_ARN: r.topicArn,
      S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
      S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
      S3BL_RUN_ID: `${name}-run`,
    };
    const reportFile = path.join(tmp, `${name}.json`);
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
          String(o.workers),
          "--batch-entries",
          "10",
          "--worker-timeout-sec",
          String(o.workerTimeoutSec ?? 3),
          "--beacon-ms",
          "500",
          "--progress-ms",
          "200",
          "--state-dir",
          path.join(tmp, "state"),
          "--report",
          reportFile,
          ...(o.masterArgs ?? []),
        ],
        { env },
      ),
    );
    const workers = Array.from({ length: o.workers }, (_, i) =>
      track(
        startCli(
          [
            "worker",
            "--source",
            source,
            "--target",
            path.join(tmp, `dst-${name}`),
            "--worker-id",
            `${name}${i + 1}`,
            "--concurrency",
            "2",
            "--report-ms",
            "200",
            "--heartbeat-ms",
            "500",
            ...(o.workerArgs ?? []),
          ],
          { env },
        ),
      ),
    );
    return {
      r,
      master,
      workers,
      report: async () => JSON.parse(await fs.readFile(reportFile, "utf8")) as RunReport,
    };
  };

  const written = (n: number) => (l: Record<string, unknown>) =>
    l.event === "progress" && l.phase === "WRITE" && Number(l.written) >= n;

  /** write.ok + unchanged + failed + skipped + notAttempted = entries: every entry ends somewhere. */
  const assertAccounted = (report: RunReport) => {
    const { ok, unchanged, failed, skipped } = report.write;
    assert.equal(report.entries, entries, "the report counts every entry of the tree");
    assert.equal(
      ok + unchanged + failed + skipped + report.notAttempted,
      entries,
      JSON.stringify({ ...report.write, notAttempted: report.notAttempted }),
    );
  };

  it("a poison batch without --dead-letter-queue-url ends through the dead-letter queue its RedrivePolicy names", async () => {
    const t0 = Date.now();
    const c = await cluster("nodlq", {
      workers: 2,
      maxReceiveCount: 1,
      // Something no run can decode, already in the dead-letter queue: a protocol error of this run.
      before: async (r) => {
        await aws.clients.sqs.send(
          new SendMessageCommand({ QueueUrl: r.deadLetterQueueUrl, MessageBody: "not a message" }),
        );
      },
    });
    await c.master.waitFor(written(150));
    // With one delivery allowed, a batch whose worker dies is poison: SQS moves it to the dead-letter queue.
    c.workers[0]?.child.kill("SIGKILL");
    assert.equal((await c.master.exited).code, 1, c.master.stderr().slice(-4000));
    const report = await c.report();
    assert.equal(report.outcome, "failed");
    assert.ok(
      report.notes.some((n) => n.includes(`reading the dead-letter queue ${c.r.deadLetterQueueUrl}`)),
      report.notes.join("\n"),
    );
    assert.ok(report.delivery.deadLettered >= 1, JSON.stringify(report.delivery));
    const dead = report.errors.filter((e) => /dead-letter queue after \d+ deliveries/.test(e.reason));
    assert.ok(dead.length > 0);
    assert.equal(dead.length, report.write.failed, "the dead-lettered entries are the failed ones");
    assert.ok(report.delivery.protocolErrors >= 1);
    assert.ok(
      report.notes.some((n) =>
        /protocol error in the dead-letter queue: .*not JSON: "not a message"/.test(n),
      ),
      report.notes.join("\n"),
    );
    assertAccounted(report);
    assert.equal(report.notAttempted, 0);
    console.log(
      `poison without the DLQ flag: ended in ${Math.round((Date.now() - t0) / 1000)} s, ${report.write.ok} ok + ${report.write.failed} dead-lettered of ${entries}`,
    );
  });

  it("a worker frozen with SIGSTOP while it holds batches ends the run at the stall limit, the batches named", async () => {
    const t0 = Date.now();
    const c = await cluster("stall", {
      workers: 2,
      // Long enough that the frozen worker's batches do not come back within the test: only the limit ends it.
      visibilitySec: 600,
      // Nor is the frozen worker declared lost: it still holds them.
      workerTimeoutSec: 600,
      masterArgs: ["--stall-timeout-sec", "5"],
    });
    await c.master.waitFor(written(60));
    const frozen = c.workers[0];
    assert.ok(frozen);
    frozen.child.kill("SIGSTOP");
    const { code } = await c.master.exited;
    const elapsed = Math.round((Date.now() - t0) / 1000);
    frozen.child.kill("SIGCONT");
    frozen.child.kill("SIGKILL");
    assert.equal(code, 1, c.master.stderr().slice(-4000));
    const report = await c.report();
    assert.equal(report.outcome, "failed");
    const m =
      /^stalled: no batch result for 5 s in WRITE (content|dirs); (\d+) batch(?:es)? outstanding \((\d+) entries\): [\d, -]+; held by (.+)$/.exec(
        report.failureReason ?? "",
      );
    assert.ok(m, report.failureReason ?? "(no reason)");
    assert.ok(Number(m[2]) >= 1);
    assert.match(
      m[4] ?? "",
      /^stall1 on \S+ \(\d+, last heard of /,
      "the frozen worker is named as a holder",
    );
    assertAccounted(report);
    // Not attempted: the entries of the batches named, and the directories when their stage never came.
    const unsentDirs = m[1] === "content" ? dirs : 0;
    assert.equal(
      report.notAttempted,
      Number(m[3]) + unsentDirs,
      "the entries not attempted are those of the batches named (and the directories not sent)",
    );
    assert.ok(report.write.ok > 0 && report.notAttempted > 0);
    console.log(
      `frozen worker: ended in ${elapsed} s; ${report.write.ok} written, ${report.notAttempted} not attempted in ${m[2]} batches, of ${entries}`,
    );
  });

  it("a before-VALIDATE hook that fails on every worker fails the run at once, its exit code and output in the report", async () => {
    const t0 = Date.now();
    const c = await cluster("hook", {
      workers: 2,
      workerArgs: ["--before-validate-cmd", "echo remounting; echo 'fuse: device not found' >&2; exit 3"],
    });
    assert.equal((await c.master.exited).code, 1, c.master.stderr().slice(-4000));
    const report = await c.report();
    assert.equal(report.outcome, "failed");
    const hooks = report.errors.filter((e) => e.phase === "hook");
    assert.deepEqual(hooks.map((e) => e.path).sort(), ["(hook on hook1)", "(hook on hook2)"]);
    for (const e of hooks) {
      assert.match(e.reason, /^before-VALIDATE hook on worker hook\d \(.*\) failed: exit code 3 after /);
      assert.match(e.reason, /last output: .*fuse: device not found/);
    }
    assert.match(
      report.failureReason ?? "",
      /^no worker can validate: the before-VALIDATE hook failed on every live worker/,
    );
    assert.deepEqual(
      report.workers.map((w) => w.hook?.ok),
      [false, false],
    );
    assert.equal(report.validate.ok + report.validate.failed, 0, "no worker validated behind a failed hook");
    assertAccounted(report);
    assert.equal(report.write.ok + report.write.unchanged, entries, "WRITE itself went through");
    console.log(
      `failing hook: ended in ${Math.round((Date.now() - t0) / 1000)} s, ${report.write.ok} written, 0 validated`,
    );
  });
});
