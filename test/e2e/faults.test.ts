/**
 * Faults with real processes: workers killed with SIGKILL in WRITE and in VALIDATE, every worker killed and
 * new ones started, the master killed and the run resumed, a batch that keeps failing, a local run interrupted
 * once and twice. Waits are on what the programs print, never on fixed sleeps.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureRunResources, type RunResources } from "../../core/aws/resources.ts";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startOutageProxy } from "../helpers/outage-proxy.ts";
import { type Proc, startCli } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

const isRoot = process.getuid?.() === 0;

describe("faults", { timeout: 600_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let source: string;
  let entries: number;
  const started: Proc[] = [];

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-faults-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 2_500, largeFiles: 0, seed: 3 });
    entries = (await listTree(source)).length + 1; // and the root itself
  });

  after(async () => {
    for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  interface Cluster {
    readonly r: RunResources;
    readonly target: string;
    readonly reportFile: string;
    master: Proc;
    readonly workers: Proc[];
    startMaster(extra?: string[]): Proc;
    startWorker(id: string): Proc;
    report(): Promise<RunReport>;
  }

  /** A master and workers as separate processes, on queues of their own, with short timeouts. */
  const cluster = async (
    name: string,
    o: { workers: number; maxReceiveCount?: number; masterArgs?: string[]; endpoint?: string },
  ): Promise<Cluster> => {
    const r = await ensureRunResources(aws.clients, name, {
      tocVisibilityTimeoutSec: 3,
      maxReceiveCount: o.maxReceiveCount ?? 5,
    });
    const env = {
      AWS_ENDPOINT_URL: o.endpoint ?? aws.emulator.url,
      S3BL_TOPIC_ARN: r.topicArn,
      S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
      S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
      S3BL_RUN_ID: `${name}-run`,
    };
    const target = path.join(tmp, `dst-${name}`);
    const reportFile = path.join(tmp, `${name}.json`);
    const track = (p: Proc) => {
      started.push(p);
      return p;
    };
    const startMaster = (extra: string[] = []) =>
      track(
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
            o.endpoint ? "30" : "3",
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
            ...(o.masterArgs ?? []),
            ...extra,
          ],
          { env },
        ),
      );
    const startWorker = (id: string) =>
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
          ],
          { env },
        ),
      );
    const c: Cluster = {
      r,
      target,
      reportFile,
      master: startMaster(),
      workers: Array.from({ length: o.workers }, (_, i) => startWorker(`${name}${i + 1}`)),
      startMaster,
      startWorker,
      report: async () => JSON.parse(await fs.readFile(reportFile, "utf8")) as RunReport,
    };
    return c;
  };

  const progressAtLeast =
    (phase: string, key: "written" | "validated", n: number) => (l: Record<string, unknown>) =>
      l.event === "progress" && l.phase === phase && Number(l[key]) >= n;

  const assertComplete = async (c: Cluster, report: RunReport) => {
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors.slice(0, 5)));
    assert.equal(report.write.ok + report.write.unchanged, entries);
    assert.equal(report.write.failed + report.write.skipped, 0);
    assert.deepEqual(report.validate, { ok: entries, failed: 0 });
    assert.deepEqual(await diffTrees(source, c.target, { owner: isRoot }), []);
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-")),
      [],
      "no control queue is left",
    );
  };

  it("a worker killed with SIGKILL mid-WRITE loses nothing: its batches are redone and counted once", async () => {
    const c = await cluster("kill", { workers: 3 });
    const [victim, ...others] = c.workers;
    assert.ok(victim);
    await c.master.waitFor(progressAtLeast("WRITE", "written", 300));
    victim.child.kill("SIGKILL");

    assert.equal((await c.master.exited).code, 0, c.master.stderr().slice(-4000));
    for (const w of others) assert.equal((await w.exited).code, 0, w.stderr().slice(-2000));
    const report = await c.report();
    await assertComplete(c, report);
    assert.deepEqual(
      report.workers.filter((w) => w.state === "LOST").map((w) => w.id),
      ["kill1"],
    );
    assert.ok(
      report.notes.some((n) => /worker kill1 .* vanished in WRITE/.test(n)),
      report.notes.join("\n"),
    );
    assert.ok(report.delivery.redelivered >= 1, "the killed worker's batch was handed out again");
  });

  it("a worker killed with SIGKILL mid-VALIDATE: its checks are redone, and the run completes", async () => {
    const c = await cluster("killv", { workers: 2 });
    await c.master.waitFor(progressAtLeast("VALIDATE", "validated", 200), 120_000);
    c.workers[0]?.child.kill("SIGKILL");
    assert.equal((await c.master.exited).code, 0, c.master.stderr().slice(-4000));
    const report = await c.report();
    await assertComplete(c, report);
    assert.ok(
      report.notes.some((n) => /worker killv1 .* vanished in VALIDATE/.test(n)),
      report.notes.join("\n"),
    );
  });

  it("every worker killed, then new ones started: the run resumes and completes", async () => {
    const c = await cluster("all", { workers: 2, masterArgs: ["--no-workers-timeout-sec", "120"] });
    await c.master.waitFor(progressAtLeast("WRITE", "written", 300));
    for (const w of c.workers) w.child.kill("SIGKILL");
    await c.master.waitFor(
      (l) => l.event === "progress" && l.workersAlive === 0 && Number(l.workersLost) === 2,
    );
    const fresh = [c.startWorker("all3"), c.startWorker("all4")];
    assert.equal((await c.master.exited).code, 0, c.master.stderr().slice(-4000));
    for (const w of fresh) assert.equal((await w.exited).code, 0);
    const report = await c.report();
    await assertComplete(c, report);
    assert.deepEqual(report.workers.map((w) => `${w.id}:${w.state}`).sort(), [
      "all1:LOST",
      "all2:LOST",
      "all3:STOPPED",
      "all4:STOPPED",
    ]);
  });

  it("the master killed with SIGKILL mid-WRITE, then --resume: the run completes without copying again", async () => {
    const c = await cluster("resume", { workers: 2 });
    const first = await c.master.waitFor(progressAtLeast("WRITE", "written", 600));
    c.master.child.kill("SIGKILL");
    await c.master.exited;
    c.master = c.startMaster(["--resume"]);
    assert.equal((await c.master.exited).code, 0, c.master.stderr().slice(-4000));
    for (const w of c.workers) assert.equal((await w.exited).code, 0, w.stderr().slice(-2000));
    const report = await c.report();
    await assertComplete(c, report);
    assert.ok(
      report.write.unchanged >= Number(first.written),
      `what the first master saw written (${first.written}) was not copied again (${report.write.unchanged} unchanged)`,
    );
    assert.ok(
      report.notes.some((n) => /resumed at .* \(attempt 2\)/.test(n)),
      report.notes.join("\n"),
    );
    const run = JSON.parse(await fs.readFile(path.join(tmp, "state/runs/resume-run/run.json"), "utf8"));
    assert.equal(run.attempts.length, 2);
    assert.equal(Date.parse(report.startedAt), run.startedAtMs, "the report covers the whole run");
  });

  it("a batch that keeps failing ends in the dead-letter queue, and every entry of it is in the report", async () => {
    // With one delivery allowed, a batch whose worker dies is poison: SQS moves it to the dead-letter queue.
    const c = await cluster("poison", { workers: 2, maxReceiveCount: 1 });
    await c.master.waitFor(progressAtLeast("WRITE", "written", 300));
    c.workers[0]?.child.kill("SIGKILL");
    assert.equal((await c.master.exited).code, 1, c.master.stderr().slice(-4000));
    const report = await c.report();
    assert.equal(report.outcome, "failed");
    assert.ok(report.delivery.deadLettered >= 1);
    const dead = report.errors.filter((e) => /dead-letter queue after \d+ deliveries/.test(e.reason));
    assert.equal(dead.length, report.write.failed);
    assert.ok(dead.length > 0);
    assert.equal(report.write.ok + report.write.failed, entries, "every entry is accounted for");
    const missing = new Set(dead.map((e) => e.path));
    assert.deepEqual(await diffTrees(source, c.target, { owner: isRoot, except: missing }), []);
  });

  it("AWS unreachable for a while mid-WRITE (connections refused, then back): the run carries on", async () => {
    const proxy = await startOutageProxy(aws.emulator.url);
    try {
      const c = await cluster("outage", { workers: 2, endpoint: proxy.url });
      await c.master.waitFor(progressAtLeast("WRITE", "written", 300));
      await proxy.down();
      await new Promise((r) => setTimeout(r, 6_000)); // the outage itself
      await proxy.up();
      assert.equal((await c.master.exited).code, 0, c.master.stderr().slice(-4000));
      await assertComplete(c, await c.report());
    } finally {
      await proxy.close();
    }
  });

  it("AWS unreachable past --aws-down-timeout-sec: the run fails cleanly with a partial report", async () => {
    const proxy = await startOutageProxy(aws.emulator.url);
    try {
      const c = await cluster("down", {
        workers: 1,
        endpoint: proxy.url,
        masterArgs: ["--aws-down-timeout-sec", "4"],
      });
      await c.master.waitFor(progressAtLeast("WRITE", "written", 100));
      await proxy.down();
      assert.equal((await c.master.exited).code, 1, c.master.stderr().slice(-4000));
      const report = await c.report();
      assert.equal(report.outcome, "failed");
      assert.match(
        report.failureReason ?? "",
        /SQS unreachable for 4 s|the TOC could not be sent: .*ECONNREFUSED/,
      );
      assert.ok(report.write.ok >= 100 && report.write.ok < entries);
      await proxy.up();
      for (const w of c.workers) w.child.kill("SIGTERM");
      // Back online, a stopped worker removes its own control queue.
      for (const w of c.workers) await w.exited;
      assert.deepEqual(
        (await aws.queueNames()).filter((n) => n.includes("-w-")),
        [],
      );
    } finally {
      await proxy.close();
    }
  });

  for (const times of [1, 2]) {
    it(`Ctrl-C ${times === 1 ? "once (drain)" : "twice (abort)"} on a local run: exit 130, no process or queue left`, async () => {
      const runId = `intr${times}-${process.pid}`;
      const reportFile = path.join(tmp, `intr${times}.json`);
      const local = startCli([
        "local",
        "--endpoint-url",
        aws.emulator.url,
        "--source",
        source,
        "--target",
        path.join(tmp, `dst-intr${times}`),
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
        `intr${times}`,
        "--report",
        reportFile,
      ]);
      await local.waitFor(progressAtLeast("WRITE", "written", 50));
      local.child.kill("SIGINT");
      if (times === 2) {
        await local.waitFor((l) => /interrupted/.test(String(l.msg)));
        local.child.kill("SIGINT");
      }
      assert.equal((await local.exited).code, 130, local.stderr().slice(-3000));
      const report: RunReport = JSON.parse(await fs.readFile(reportFile, "utf8"));
      assert.equal(report.outcome, "interrupted");
      assert.ok(report.write.ok >= 50);
      assert.ok(report.write.ok < entries, "stopped before the end");
      assert.deepEqual(processesWith(runId), [], "no worker process is left");
      assert.deepEqual(
        (await aws.queueNames()).filter((n) => n.includes("-w-")),
        [],
      );
      assert.equal(await aws.subscriptionCount(), 0);
    });
  }
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
