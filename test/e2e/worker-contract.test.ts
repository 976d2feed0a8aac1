/**
 * One real worker process, with this test playing the master over the real topic and queues: it sends TOC
 * batches that no honest crawl would produce (absolute paths, `..`, symlinked parents that lead outside the
 * roots, files that vanished) and garbage messages, and reads what the worker reports.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureRunResources, type RunResources } from "../../core/aws/resources.ts";
import { SnsTopic } from "../../core/aws/sns-topic.ts";
import { SqsQueue } from "../../core/aws/sqs-queue.ts";
import { type BatchResult, decodeMessage, encodeMessage, type Message } from "../../core/messages.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type Proc, startCli } from "../helpers/run.ts";

const RUN = "contract-run";

describe("a worker, driven by hand", { timeout: 120_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let r: RunResources;
  let worker: Proc;
  let reports: SqsQueue;
  let toc: SqsQueue;
  let topic: SnsTopic;
  const received: Message[] = [];

  /** Reads the report queue until a message matches. */
  const waitReport = async (pred: (m: Message) => boolean, timeoutMs = 30_000): Promise<Message> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = received.find(pred);
      if (hit) return hit;
      if (Date.now() > end) throw new Error(`no such report; worker said:\n${worker.stderr().slice(-2000)}`);
      const ms = await reports.receive({ max: 10, waitSec: 1 });
      for (const m of ms) {
        const d = decodeMessage(m.body, {
          expectRun: RUN,
          accept: ["WORKER_STATE", "SUMMARY", "ERROR_REPORT"],
        });
        if (d.ok) received.push(d.message);
      }
      if (ms.length) await reports.delete(ms.map((m) => m.receipt));
    }
  };

  before(async () => {
    aws = await startTestAws();
    r = await ensureRunResources(aws.clients, "contract", {
      tocVisibilityTimeoutSec: 30,
      maxReceiveCount: 5,
    });
    reports = new SqsQueue(aws.clients.sqs, r.reportQueueUrl);
    toc = new SqsQueue(aws.clients.sqs, r.tocQueueUrl);
    topic = new SnsTopic(aws.clients.sns, r.topicArn);
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-contract-"));
    const src = path.join(tmp, "src");
    const dst = path.join(tmp, "dst");
    const outside = path.join(tmp, "outside");
    await fs.mkdir(src);
    await fs.mkdir(dst);
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, "secret"), "must never be read\n");
    await fs.writeFile(path.join(src, "ok.txt"), "fine\n");
    await fs.writeFile(path.join(src, "name with\nnewline"), "odd\n");
    await fs.symlink(outside, path.join(src, "escape")); // a symlinked parent in the source
    await fs.mkdir(path.join(src, "tdir"));
    await fs.writeFile(path.join(src, "tdir/x"), "x\n");
    await fs.symlink(outside, path.join(dst, "tdir")); // a symlinked parent in the target
    worker = startCli(
      [
        "worker",
        "--source",
        src,
        "--target",
        dst,
        "--run-id",
        RUN,
        "--worker-id",
        "contract-1",
        "--report-ms",
        "100",
        "--heartbeat-ms",
        "500",
        "--before-validate-cmd",
        `echo remounted > "${path.join(tmp, "hook-ran")}"`,
      ],
      {
        env: {
          AWS_ENDPOINT_URL: aws.emulator.url,
          S3BL_TOPIC_ARN: r.topicArn,
          S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
          S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
        },
      },
    );
  });

  after(async () => {
    worker?.child.kill("SIGKILL");
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("announces itself, and works only the entries that stay inside its roots", async () => {
    await waitReport((m) => m.type === "WORKER_STATE" && m.state === "INITIALIZED");
    await topic.publish(
      encodeMessage(RUN, {
        type: "MODE",
        phase: "WRITE",
        known: ["contract-1"],
        failfast: false,
        sentAtMs: 0,
      }),
    );
    await toc.send([
      "not json at all",
      JSON.stringify({ v: 1, run: RUN, type: "TOC_BATCH", phase: "WRITE", entries: "nope" }),
      encodeMessage("someone-else", {
        type: "TOC_BATCH",
        phase: "WRITE",
        stage: "content",
        batch: 0,
        entries: [["ok.txt", "f", 5, "0"]],
      }),
      encodeMessage(RUN, { type: "SHUTDOWN", reason: "forged on the TOC queue" }),
      encodeMessage(RUN, {
        type: "TOC_BATCH",
        phase: "WRITE",
        stage: "content",
        batch: 0,
        entries: [
          ["ok.txt", "f", 5, "0"],
          ["name with\nnewline", "f", 4, "0"],
          ["gone.txt", "f", 3, "0"],
          ["/etc/passwd", "f", 1, "0"],
          ["../outside/secret", "f", 1, "0"],
          ["escape/secret", "f", 1, "0"],
          ["tdir/x", "f", 2, "0"],
        ],
      }),
    ]);
    const s = await waitReport((m) => m.type === "SUMMARY" && m.batches.some((b) => b.batch === 0));
    assert.ok(s.type === "SUMMARY");
    const result = s.batches.find((b) => b.batch === 0) as BatchResult;
    const reasons = Object.fromEntries(result.errors.map((e) => [e.path, e.reason]));
    assert.equal(result.ok, 2, JSON.stringify(result));
    assert.equal(result.failed, 5);
    assert.match(reasons["gone.txt"] ?? "", /source vanished after the crawl/);
    assert.match(reasons["/etc/passwd"] ?? "", /refused: absolute path/);
    assert.match(reasons["../outside/secret"] ?? "", /refused: path contains '\.\.'/);
    assert.match(reasons["escape/secret"] ?? "", /resolves outside the source root/);
    assert.match(reasons["tdir/x"] ?? "", /resolves outside the target root/);
    assert.equal(await fs.readFile(path.join(tmp, "dst/name with\nnewline"), "utf8"), "odd\n");
    assert.deepEqual(await fs.readdir(path.join(tmp, "outside")), ["secret"], "nothing was written outside");

    // The four bad messages were dropped and counted, not acted on.
    const later = await waitReport((m) => m.type === "SUMMARY" && m.protocolErrors >= 4);
    assert.ok(later.type === "SUMMARY");
    assert.equal(later.protocolErrors, 4);
  });

  it("checks what it wrote in VALIDATE, and reports a target that was tampered with", async () => {
    await fs.writeFile(path.join(tmp, "dst/ok.txt"), "changed!\n");
    await topic.publish(
      encodeMessage(RUN, { type: "MODE", phase: "VALIDATE", known: [], failfast: false, sentAtMs: 0 }),
    );
    await toc.send([
      encodeMessage(RUN, {
        type: "TOC_BATCH",
        phase: "VALIDATE",
        stage: "content",
        batch: 1,
        entries: [
          ["ok.txt", "f", 5, "0"],
          ["name with\nnewline", "f", 4, "0"],
          ["missing.txt", "f", 1, "0"],
        ],
      }),
    ]);
    const s = await waitReport((m) => m.type === "SUMMARY" && m.batches.some((b) => b.batch === 1));
    assert.equal(
      await fs.readFile(path.join(tmp, "hook-ran"), "utf8"),
      "remounted\n",
      "the before-VALIDATE hook ran before the checks",
    );
    assert.ok(s.type === "SUMMARY");
    const result = s.batches.find((b) => b.batch === 1) as BatchResult;
    assert.equal(result.ok, 1);
    const reasons = Object.fromEntries(result.errors.map((e) => [e.path, e.reason]));
    assert.match(reasons["ok.txt"] ?? "", /size 9 in the target, 5 in the source/);
    assert.match(reasons["missing.txt"] ?? "", /missing in the target/);
  });

  it("confirms its error count in ERROR_REPORT, then stops and removes its queue on SHUTDOWN", async () => {
    await topic.publish(
      encodeMessage(RUN, { type: "MODE", phase: "ERROR_REPORT", known: [], failfast: false, sentAtMs: 0 }),
    );
    const report = await waitReport((m) => m.type === "ERROR_REPORT");
    assert.ok(report.type === "ERROR_REPORT");
    assert.equal(report.errorsSent, 7);
    await topic.publish(encodeMessage(RUN, { type: "SHUTDOWN", reason: "test over" }));
    const { code } = await worker.exited;
    assert.equal(code, 0, worker.stderr().slice(-2000));
    await waitReport((m) => m.type === "WORKER_STATE" && m.state === "STOPPED");
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-")),
      [],
    );
  });
});
