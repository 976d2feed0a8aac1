import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { makeSampleTree } from "../../local/sample-tree.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startLocal } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

const isRoot = process.getuid?.() === 0;

describe("a local run, end to end over the emulator", { timeout: 240_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let source: string;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-e2e-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 900, largeFiles: 2, seed: 7 });
    // Names and kinds the original lost or stumbled on.
    await fs.mkdir(path.join(source, ".hidden dir/deeper"), { recursive: true });
    await fs.writeFile(path.join(source, ".hidden dir/deeper/.secret"), "hidden but copied\n");
    await fs.writeFile(path.join(source, "new\nline and\ttab.txt"), "odd name\n");
    await fs.writeFile(path.join(source, "NFC é.txt".normalize("NFC")), "nfc\n");
    await fs.writeFile(path.join(source, "NFD é.txt".normalize("NFD")), "nfd\n");
    await fs.writeFile(path.join(source, "quote \"'` back\\slash %+#?*.txt"), "punctuation\n");
    await fs.writeFile(path.join(source, "empty"), "");
    await fs.mkdir(path.join(source, "empty dir 2"));
    await fs.symlink("/absolute/target/that/does/not/exist", path.join(source, "abs-dangling"));
    if (isRoot) {
      await fs.chown(path.join(source, "empty"), 1234, 5678);
      await fs.lchown(path.join(source, "abs-dangling"), 42, 43);
      await fs.chown(path.join(source, ".hidden dir"), 1001, 1002);
    }
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const variants = [
    { copier: "fs", calls: "direct" },
    { copier: "fs", calls: "threads" },
    { copier: "rsync", calls: "auto" },
  ] as const;
  for (const { copier, calls } of variants) {
    it(`copies every entry with content, mode, ${isRoot ? "owner, " : ""}mtime and links intact (copier ${copier}, calls ${calls})`, async () => {
      const target = path.join(tmp, `dst-${copier}-${calls}`);
      const run = startLocal({
        endpoint: aws.emulator.url,
        dir: tmp,
        name: `e2e-${copier}-${calls}`,
        source,
        target,
        args: [
          ...["--workers", "3", "--concurrency", "8", "--copier", copier, "--batch-entries", "50"],
          ...["--fs-calls", calls],
        ],
      });
      const { code } = await run.exited;
      assert.equal(code, 0, run.stderr().slice(-3000));

      assert.deepEqual(await diffTrees(source, target, { owner: isRoot }), []);

      const report = await run.report();
      // Source and target are on this machine's disk: auto makes the calls directly.
      const workerLog = await fs.readFile(
        path.join(tmp, `state-e2e-${copier}-${calls}`, "runs", report.runId, "worker-1.log"),
        "utf8",
      );
      const made = calls === "threads" ? "threads" : "direct";
      assert.match(workerLog, new RegExp(`file system calls: ${made} \\(--fs-calls ${calls}\\)`));
      const entries = (await listTree(source)).length + 1; // and the root itself
      assert.equal(report.outcome, "succeeded");
      assert.equal(report.entries, entries);
      assert.deepEqual(report.write, { ok: entries, failed: 0, skipped: 0, unchanged: 0 });
      assert.deepEqual(report.validate, { ok: entries, failed: 0 });
      assert.deepEqual(report.errors, []);
      assert.equal(report.workers.length, 3);
      assert.equal(
        report.workers.reduce((n, w) => n + w.write.ok, 0),
        entries,
        "the workers' own totals add up to the entries",
      );
      assert.ok(report.bytes > 2 * 1_048_576);
      assert.ok(Date.parse(report.endedAt) >= Date.parse(report.startedAt));
      assert.ok(report.delivery.sqsRequestsPerEntry > 0 && report.delivery.sqsRequestsPerEntry < 1);

      const leftovers = (await aws.queueNames()).filter((n) => n.includes("-w-"));
      assert.deepEqual(leftovers, [], "every worker removed its control queue");
      assert.equal(await aws.subscriptionCount(), 0, "and its subscription");
    });
  }

  it("a second run over the same queues starts clean and succeeds again", async () => {
    const target = path.join(tmp, "dst-again");
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: "e2e-fs", // the queues of the first test
      source,
      target,
      args: ["--workers", "2"],
    });
    const { code } = await run.exited;
    assert.equal(code, 0, run.stderr().slice(-3000));
    const summary = run.lines.find((l) => l.event === "summary");
    assert.equal(summary?.outcome, "succeeded");
    assert.deepEqual(await diffTrees(source, target, { owner: isRoot }), []);
  });
});
