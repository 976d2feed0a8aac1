/**
 * A real worker process in real trouble, with this test in the master's seat: results far too big for one
 * message, a target that conflicts with the source, the report queue out of reach for a while, a worker of an
 * earlier run still polling, a worker frozen past its master's patience, and a master that falls silent. Each
 * case checks that every entry is accounted for and how the worker ends, within a bound.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureRunResources } from "../../core/aws/resources.ts";
import { SqsTopicSubscriptions } from "../../core/aws/sns-topic.ts";
import { SqsQueue } from "../../core/aws/sqs-queue.ts";
import { decodeMessage, type MessageBody } from "../../core/messages.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type DrivenWorker, driveWorker } from "../helpers/driver.ts";
import { startOutageProxy } from "../helpers/outage-proxy.ts";
import { type Proc, unprivileged } from "../helpers/run.ts";

type Wire = Extract<MessageBody, { type: "TOC_BATCH" }>["entries"][number];
const file = (p: string, size = 0): Wire => [p, "f", size, "0"];
const modeMsg = (phase: "WRITE" | "VALIDATE" | "ERROR_REPORT", known: string[] = []): MessageBody => ({
  type: "MODE",
  phase,
  known,
  failfast: false,
  sentAtMs: Date.now(),
});
const batch = (n: number, entries: Wire[], phase: "WRITE" | "VALIDATE" = "WRITE") =>
  ({ type: "TOC_BATCH", phase, stage: "content", batch: n, entries }) as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const announced = (w: DrivenWorker) =>
  w.waitReport((m) => m.type === "WORKER_STATE" && m.state === "INITIALIZED");

describe("a worker in trouble", { timeout: 600_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  const procs: Proc[] = [];
  const drive = async (o: Parameters<typeof driveWorker>[1]) => {
    const w = await driveWorker(aws, o);
    procs.push(w.proc);
    return w;
  };

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-trouble-"));
    await fs.chmod(tmp, 0o755);
  });

  after(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill("SIGCONT");
        p.child.kill("SIGKILL");
      }
    }
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  /**
   * `n` files whose paths are `len` characters of `ch` (directories included): unreadable (mode 000), or
   * readable ones the TOC will say are other files than the crawl saw.
   */
  const awkward = async (
    root: string,
    n: number,
    len: number,
    ch: string,
    mode: number,
  ): Promise<string[]> => {
    // Components stay under 255 bytes: a directory of 100 characters, then the file's own name.
    const dir = ch.repeat(Math.min(100, Math.floor(len / 2)));
    await fs.mkdir(path.join(root, dir), { recursive: true, mode: 0o755 });
    const paths: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = `${dir}/${String(i).padStart(4, "0")}${ch.repeat(len - dir.length - 5)}`;
      await fs.writeFile(path.join(root, p), "x", { mode });
      await fs.chmod(path.join(root, p), mode);
      paths.push(p);
    }
    return paths;
  };

  // The first case is the one that used to jam a worker: 500 unreadable files of 243-character paths. Each
  // error's reason is short now, so its result may fit in one message; what must hold is that every error
  // arrives. The second cannot fit: 500 non-ASCII paths (six bytes a letter escaped, still within one TOC
  // message) whose TOC entries name another inode than the file has, so each fails with the long "changed
  // during the run" reason, and the result must travel in parts.
  for (const c of [
    {
      what: "243-character paths, unreadable",
      name: "big-ascii",
      ch: "a",
      len: 243,
      mode: 0o000,
      ino: undefined,
      reason: /permission denied/,
      mustSplit: false,
    },
    {
      what: "75-character non-ASCII paths of files changed since the crawl",
      name: "big-utf",
      ch: "é",
      len: 75,
      mode: 0o644,
      ino: "1",
      reason: /changed during the run/,
      mustSplit: true,
    },
  ] as const) {
    it(`reports every error of two full 500-entry batches that fail whole (${c.what})${c.mustSplit ? ", in parts that all arrive" : ""}`, async () => {
      const { name, what } = c;
      const src = path.join(tmp, `src-${name}`);
      const dst = path.join(tmp, `dst-${name}`);
      await fs.mkdir(dst, { recursive: true, mode: 0o777 });
      await fs.chmod(dst, 0o777);
      const paths = await awkward(src, 1_000, c.len, c.ch, c.mode);
      await fs.chmod(src, 0o755);
      const w = await drive({ name, runId: `${name}-run`, source: src, target: dst, as: unprivileged() });
      await announced(w);
      const t0 = Date.now();
      await w.publish(modeMsg("WRITE", [`${name}-1`]));
      const entry = (p: string): Wire => (c.ino === undefined ? file(p, 1) : [p, "f", 1, "0", c.ino]);
      for (const n of [1, 2]) await w.sendBatch(batch(n, paths.slice((n - 1) * 500, n * 500).map(entry)));
      for (const n of [1, 2]) {
        const { result, parts } = await w.fullResult(n, 60_000);
        if (c.mustSplit) assert.ok(parts >= 2, `batch ${n} came in ${parts} part(s)`);
        assert.equal(result.failed, 500);
        assert.equal(result.ok + result.skipped + result.unchanged, 0);
        assert.deepEqual(
          result.errors.map((e) => e.path),
          paths.slice((n - 1) * 500, n * 500),
          "every entry has its error line, once",
        );
        assert.ok(
          result.errors.every((e) => c.reason.test(e.reason)),
          result.errors[0]?.reason,
        );
      }
      const ms = Date.now() - t0;
      // Reported, then deleted: nothing waits or is held on the TOC queue.
      for (let i = 0; i < 20 && (await w.tocCounts()).inFlight > 0; i++) await sleep(250);
      assert.deepEqual(await w.tocCounts(), { visible: 0, inFlight: 0 });
      // Heartbeats kept coming behind the big results: the worker was never taken for dead.
      await w.waitReport(
        (m) => m.type === "SUMMARY" && m.batches.length === 0 && m.totals.WRITE.failed === 1_000,
      );
      await w.publish({ type: "SHUTDOWN", reason: "test over" });
      assert.equal((await w.proc.exited).code, 0, w.proc.stderr().slice(-2000));
      console.log(`# ${what}: 1,000 errors reported in ${ms} ms`);
    });
  }

  it("reports a target file where the source has a directory (rsync copier) and goes on, instead of hanging", async () => {
    const src = path.join(tmp, "src-conflict");
    const dst = path.join(tmp, "dst-conflict");
    await fs.mkdir(path.join(src, "a/b"), { recursive: true });
    await fs.writeFile(path.join(src, "a/b/c.txt"), "deep\n");
    await fs.writeFile(path.join(src, "ok.txt"), "fine\n");
    await fs.mkdir(dst);
    await fs.writeFile(path.join(dst, "a"), "a file where the source has a directory\n");
    const w = await drive({
      name: "conflict",
      runId: "conflict-run",
      source: src,
      target: dst,
      args: ["--copier", "rsync"],
    });
    await announced(w);
    const t0 = Date.now();
    await w.publish(modeMsg("WRITE", ["conflict-1"]));
    await w.sendBatch(batch(1, [file("a/b/c.txt", 5), file("ok.txt", 5)]));
    const { result } = await w.fullResult(1, 30_000);
    const ms = Date.now() - t0;
    assert.equal(result.ok, 1, JSON.stringify(result));
    assert.equal(result.failed, 1);
    assert.equal(result.errors[0]?.path, "a/b/c.txt");
    assert.match(result.errors[0]?.reason ?? "", /ENOTDIR|not a directory/i);
    assert.equal(await fs.readFile(path.join(dst, "ok.txt"), "utf8"), "fine\n");
    for (let i = 0; i < 20 && (await w.tocCounts()).inFlight > 0; i++) await sleep(250);
    assert.deepEqual(await w.tocCounts(), { visible: 0, inFlight: 0 }, "the batch was deleted, not held");
    await w.publish({ type: "SHUTDOWN", reason: "test over" });
    assert.equal((await w.proc.exited).code, 0);
    console.log(`# rsync conflict: reported in ${ms} ms`);
  });

  it("loses no result while the report queue is out of reach for a while, and reports them all after", async () => {
    const proxy = await startOutageProxy(aws.emulator.url);
    try {
      const src = path.join(tmp, "src-outage");
      const dst = path.join(tmp, "dst-outage");
      const files: string[] = [];
      for (let d = 0; d < 40; d++) {
        await fs.mkdir(path.join(src, `d${d}`), { recursive: true });
        for (let f = 0; f < 100; f++) {
          await fs.writeFile(path.join(src, `d${d}/f${f}`), `${d}/${f}\n`);
          files.push(`d${d}/f${f}`);
        }
      }
      const w = await drive({
        name: "outage",
        runId: "outage-run",
        source: src,
        target: dst,
        endpoint: proxy.url,
        args: ["--concurrency", "1"],
      });
      await announced(w);
      await w.publish(modeMsg("WRITE", ["outage-1"]));
      for (let b = 0; b < 4; b++) {
        await w.sendBatch(
          batch(
            b,
            files.slice(b * 1_000, b * 1_000 + 1_000).map((p) => file(p, p.length + 1)),
          ),
        );
      }
      // Cut it off while it works on its first batch: that batch ends during the outage.
      const written = async () =>
        (
          await Promise.all((await fs.readdir(dst).catch(() => [])).map((d) => fs.readdir(path.join(dst, d))))
        ).flat().length;
      for (let i = 0; i < 500 && (await written()) < 50; i++) await sleep(10);
      await proxy.down();
      const downAt = Date.now();
      await w.proc.waitFor((l) => /report not sent \(attempt/.test(String(l.msg)), 30_000);
      await sleep(4_000);
      await proxy.up();
      const results = [];
      for (let b = 0; b < 4; b++) results.push((await w.fullResult(b, 90_000)).result);
      const ms = Date.now() - downAt;
      assert.equal(
        results.reduce((n, r) => n + r.ok + r.unchanged, 0),
        4_000,
        "every entry of every batch is reported",
      );
      assert.equal(
        results.reduce((n, r) => n + r.failed, 0),
        0,
      );
      for (let i = 0; i < 40 && (await w.tocCounts()).inFlight > 0; i++) await sleep(250);
      assert.deepEqual(await w.tocCounts(), { visible: 0, inFlight: 0 });
      await w.publish({ type: "SHUTDOWN", reason: "test over" });
      assert.equal((await w.proc.exited).code, 0, w.proc.stderr().slice(-2000));
      console.log(`# report queue outage: 4 batches, 4,000 entries reported ${ms} ms after it began`);
    } finally {
      await proxy.close();
    }
  });

  it("a leftover worker of an earlier run puts the next run's batches back, and leaves when its master is gone", async () => {
    const src = path.join(tmp, "src-leftover");
    await fs.mkdir(src);
    const names = Array.from({ length: 40 }, (_, i) => `f${i}.txt`);
    for (const n of names) await fs.writeFile(path.join(src, n), `${n}\n`);
    const dst = path.join(tmp, "dst-leftover");
    // The old run's worker, whose master says WRITE once and is never heard again.
    const old = await drive({
      name: "leftover",
      runId: "old-run",
      workerId: "old-1",
      source: src,
      target: dst,
      args: ["--master-timeout-sec", "12"],
      maxReceiveCount: 10,
    });
    await announced(old);
    await old.publish(modeMsg("WRITE", ["old-1"]));
    const silentFrom = Date.now();
    // The next run's TOC, on the same queues, before its own worker is there.
    const next = "new-run";
    const bodies = [0, 1, 2, 3].map((b) => ({
      v: 1,
      run: next,
      ...batch(
        b,
        names.slice(b * 10, b * 10 + 10).map((n) => file(n, n.length + 1)),
      ),
    }));
    await old.sendToc(bodies.map((b) => JSON.stringify(b)));
    await old.proc.waitFor(
      (l) => /put back a TOC message: TOC_BATCH of run new-run/.test(String(l.msg)),
      20_000,
    );
    const fresh = await drive({
      name: "leftover",
      runId: next,
      workerId: "new-1",
      source: src,
      target: dst,
      maxReceiveCount: 10,
    });
    await announced(fresh);
    await fresh.publish(modeMsg("WRITE", ["new-1"]));
    const results = [];
    for (let b = 0; b < 4; b++) results.push((await fresh.fullResult(b, 60_000)).result);
    assert.equal(
      results.reduce((n, r) => n + r.ok, 0),
      40,
      "every entry of the next run was written by its own worker",
    );
    assert.ok(
      results.some((r) => r.receiveCount >= 2),
      "the leftover worker had received some batch and put it back",
    );
    assert.equal((await fs.readdir(dst)).length, 40);
    const { code } = await old.proc.exited;
    const lastedMs = Date.now() - silentFrom;
    assert.equal(code, 1, old.proc.stderr().slice(-2000));
    assert.ok(
      lastedMs < 12_000 + 15_000,
      `the leftover worker left ${lastedMs} ms after its master's last word`,
    );
    assert.ok(old.proc.lines.some((l) => /no word from the master for 12 s/.test(String(l.msg))));
    const putBack = old.proc.lines.filter((l) => /put back a TOC message/.test(String(l.msg))).length;
    assert.ok(putBack >= 1);
    for (let i = 0; i < 20 && (await fresh.tocCounts()).inFlight > 0; i++) await sleep(250);
    assert.deepEqual(
      await fresh.tocCounts(),
      { visible: 0, inFlight: 0 },
      "nothing deleted unworked, nothing left",
    );
    await fresh.publish({ type: "SHUTDOWN", reason: "test over" });
    assert.equal((await fresh.proc.exited).code, 0);
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-old-1")),
      [],
      "the leftover worker removed its control queue",
    );
    console.log(
      `# leftover worker: ${putBack} put back, 40/40 written by the next run, left after ${lastedMs} ms`,
    );
  });

  it("a worker frozen while its master dropped it and removed its queue rejoins when thawed, and its results arrive", async () => {
    const src = path.join(tmp, "src-frozen");
    await fs.mkdir(src);
    const names = Array.from({ length: 400 }, (_, i) => `f${String(i).padStart(3, "0")}.txt`);
    for (const n of names) await fs.writeFile(path.join(src, n), `${n}\n`);
    const dst = path.join(tmp, "dst-frozen");
    const hookFile = path.join(tmp, "frozen-hook-ran");
    const w = await drive({
      name: "frozen",
      runId: "frozen-run",
      source: src,
      target: dst,
      args: ["--concurrency", "1", "--before-validate-cmd", `echo remounted > "${hookFile}"`],
    });
    const hello = await announced(w);
    assert.ok(hello.type === "WORKER_STATE");
    await w.publish(modeMsg("WRITE", ["frozen-1"]));
    await w.sendBatch(
      batch(
        1,
        names.map((n) => file(n, n.length + 1)),
      ),
    );
    // Freeze it mid-batch.
    for (let i = 0; i < 200 && (await fs.readdir(dst).catch(() => [])).length === 0; i++) await sleep(20);
    w.proc.child.kill("SIGSTOP");
    const frozenAt = Date.now();
    // The master declares it lost and removes its queue, as after --worker-timeout-sec.
    await new SqsTopicSubscriptions(aws.clients.sqs, aws.clients.sns, w.resources.topicArn).close(
      hello.controlQueueUrl,
      hello.subscriptionArn,
    );
    await sleep(3_000);
    w.proc.child.kill("SIGCONT");
    const again = await w.waitReport(
      (m) =>
        m.type === "WORKER_STATE" && m.state === "INITIALIZED" && m.controlQueueUrl !== hello.controlQueueUrl,
      30_000,
    );
    const rejoinMs = Date.now() - frozenAt - 3_000;
    assert.ok(again.type === "WORKER_STATE");
    assert.ok((await aws.queueNames()).includes(again.controlQueueUrl.split("/").pop() ?? ""));
    const { result } = await w.fullResult(1, 30_000);
    assert.equal(result.ok, 400, "the batch in hand when frozen is reported whole");
    // It hears the master again on its new queue: VALIDATE runs its hook first, then checks.
    await w.publish(modeMsg("VALIDATE"));
    const hook = await w.waitReport((m) => m.type === "HOOK", 30_000);
    assert.ok(hook.type === "HOOK" && hook.ok, JSON.stringify(hook));
    await w.sendBatch(
      batch(
        2,
        names.map((n) => file(n, n.length + 1)),
        "VALIDATE",
      ),
    );
    const checked = (await w.fullResult(2, 30_000)).result;
    assert.equal(checked.ok, 400);
    assert.equal(await fs.readFile(hookFile, "utf8"), "remounted\n");
    await w.publish({ type: "SHUTDOWN", reason: "test over" });
    assert.equal((await w.proc.exited).code, 0, w.proc.stderr().slice(-2000));
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-frozen")),
      [],
    );
    console.log(
      `# frozen worker: rejoined ${rejoinMs} ms after the thaw, 400 written + 400 checked reported`,
    );
  });

  it("a worker whose master falls silent puts back the batches it holds and exits 1 within the bound", async () => {
    const src = path.join(tmp, "src-silent");
    await fs.mkdir(src);
    const names = Array.from({ length: 30 }, (_, i) => `f${i}.txt`);
    for (const n of names) await fs.writeFile(path.join(src, n), `${n}\n`);
    const r = await ensureRunResources(aws.clients, "silent", {
      tocVisibilityTimeoutSec: 30,
      maxReceiveCount: 5,
    });
    // Its results cannot be delivered (the report queue it was given does not exist): it holds its batches.
    const w = await drive({
      name: "silent",
      runId: "silent-run",
      source: src,
      target: path.join(tmp, "dst-silent"),
      args: ["--master-timeout-sec", "6"],
      env: { S3BL_REPORT_QUEUE_URL: `${r.reportQueueUrl}-missing` },
    });
    await w.proc.waitFor((l) => /listening on its control queue/.test(String(l.msg)), 30_000);
    await w.publish(modeMsg("WRITE"));
    const lastWord = Date.now();
    await w.sendBatch(
      batch(
        1,
        names.slice(0, 15).map((n) => file(n, n.length + 1)),
      ),
    );
    await w.sendBatch(
      batch(
        2,
        names.slice(15).map((n) => file(n, n.length + 1)),
      ),
    );
    const { code } = await w.proc.exited;
    const lastedMs = Date.now() - lastWord;
    assert.equal(code, 1, w.proc.stderr().slice(-2000));
    assert.ok(
      lastedMs >= 6_000 && lastedMs < 6_000 + 10_000,
      `exited ${lastedMs} ms after the master's last word`,
    );
    assert.ok(
      w.proc.lines.some((l) =>
        /no word from the master for 6 s .*released 2 batch\(es\)/.test(String(l.msg)),
      ),
      w.proc.stderr().slice(-2000),
    );
    // Put back at visibility 0: both batches are there again at once, not after the 30 s visibility timeout.
    const toc = new SqsQueue(aws.clients.sqs, w.resources.tocQueueUrl);
    const back = await toc.receive({ max: 10, waitSec: 2 });
    const batches = back
      .map((m) => decodeMessage(m.body, { accept: ["TOC_BATCH"] }))
      .flatMap((d) => (d.ok && d.message.type === "TOC_BATCH" ? [d.message.batch] : []));
    assert.deepEqual(batches.sort(), [1, 2], w.proc.stderr().slice(-3000));
    assert.ok(back.every((m) => m.receiveCount === 2));
    await toc.delete(back.map((m) => m.receipt));
    assert.deepEqual(
      (await aws.queueNames()).filter((n) => n.includes("-w-silent")),
      [],
      "it removed its control queue",
    );
    console.log(`# silent master: worker exited 1 after ${lastedMs} ms, 2 batches (30 entries) put back`);
  });
});
