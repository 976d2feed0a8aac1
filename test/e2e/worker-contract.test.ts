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
import { type BatchResult, encodeMessage, type Message } from "../../core/messages.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type DrivenWorker, driveWorker } from "../helpers/driver.ts";

const RUN = "contract-run";

describe("a worker, driven by hand", { timeout: 120_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let worker: DrivenWorker;
  const waitReport = (pred: (m: Message) => boolean) => worker.waitReport(pred);

  before(async () => {
    aws = await startTestAws();
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
    worker = await driveWorker(aws, {
      name: "contract",
      runId: RUN,
      source: src,
      target: dst,
      args: ["--before-validate-cmd", `echo remounted > "${path.join(tmp, "hook-ran")}"`],
    });
  });

  after(async () => {
    worker?.proc.child.kill("SIGKILL");
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("announces itself, and works only the entries that stay inside its roots", async () => {
    await waitReport((m) => m.type === "WORKER_STATE" && m.state === "INITIALIZED");
    await worker.publish({
      type: "MODE",
      phase: "WRITE",
      known: ["contract-1"],
      failfast: false,
      sentAtMs: 0,
    });
    await worker.sendToc([
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
    await worker.publish({ type: "MODE", phase: "VALIDATE", known: [], failfast: false, sentAtMs: 0 });
    await worker.sendToc([
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
    await worker.publish({ type: "MODE", phase: "ERROR_REPORT", known: [], failfast: false, sentAtMs: 0 });
    const report = await waitReport((m) => m.type === "ERROR_REPORT");
    assert.ok(report.type === "ERROR_REPORT");
    assert.equal(report.errorsSent, 7);
    await worker.publish({ type: "SHUTDOWN", reason: "test over" });
    const { code } = await worker.proc.exited;
    assert.equal(code, 0, worker.proc.stderr().slice(-2000));
    await waitReport((m) => m.type === "WORKER_STATE" && m.state === "STOPPED");
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-")),
      [],
    );
  });
});
