/**
 * The file read is the file crawled: the source is crawled, the run starts copying, and then a directory of the
 * source is swapped for a symlink to a directory outside it holding files of the same names. Real worker
 * processes (the `fs` copier, the `rsync` copier and the S3 target), with this test in the master's seat so that
 * the swap comes at a known point: after the first batch is copied (a file in the directory among it, so the
 * workers have looked at the directory and hold it as inside the source), before the rest of the directory.
 * Nothing of the outside directory may reach a target, and each entry under the swapped directory is reported.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { entryToWire, type Stage, type TocEntry } from "../../core/messages.ts";
import { crawl } from "../../toc/crawl.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type DrivenWorker, driveWorker } from "../helpers/driver.ts";
import { listTree } from "../helpers/tree.ts";

const OUTSIDE = "OUTSIDE: must never be copied\n";

describe("a source directory swapped for a symlink during a run", { timeout: 180_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let src: string;
  let entries: TocEntry[];
  const workers: { name: string; target: string; worker: DrivenWorker }[] = [];

  before(async () => {
    aws = await startTestAws();
    await aws.clients.s3.send(new CreateBucketCommand({ Bucket: "swap" }));
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-swap-"));
    src = path.join(tmp, "src");
    const outside = path.join(tmp, "outside");
    for (const root of [src, outside]) await fs.mkdir(path.join(root, "dir/sub"), { recursive: true });
    await fs.writeFile(path.join(src, "a.txt"), "copied before the swap\n");
    await fs.writeFile(path.join(src, "dir/first.txt"), "copied before the swap too\n");
    await fs.writeFile(path.join(src, "dir/inside.txt"), "the crawled file\n");
    await fs.writeFile(path.join(src, "dir/sub/deep.txt"), "the crawled deep file\n");
    await fs.symlink("inside.txt", path.join(src, "dir/link"));
    // Outside: the same names under dir/, so that every path of the TOC still resolves after the swap.
    await fs.writeFile(path.join(outside, "dir/inside.txt"), OUTSIDE);
    await fs.writeFile(path.join(outside, "dir/sub/deep.txt"), OUTSIDE);
    await fs.symlink("/etc/passwd", path.join(outside, "dir/link"));
    entries = [];
    for await (const item of crawl(src)) if (item.type === "entry") entries.push(item.entry);
    // The root, a.txt, dir, dir/sub, three files, a link.
    assert.equal(entries.length, 8, JSON.stringify(entries));
    assert.ok(
      entries.every((e) => e.ino !== undefined && e.dev === undefined),
      "the crawl carries each entry's inode (its device is the root's)",
    );
    for (const [name, target, args] of [
      ["swapfs", path.join(tmp, "dst-fs"), []],
      ["swaprsync", path.join(tmp, "dst-rsync"), ["--copier", "rsync"]],
      ["swaps3", "s3://swap/s", []],
    ] as const) {
      const worker = await driveWorker(aws, {
        name,
        runId: `${name}-run`,
        source: src,
        target,
        args: [...args],
      });
      workers.push({ name, target, worker });
    }
  });

  after(async () => {
    for (const w of workers) w.worker.proc.child.kill("SIGKILL");
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const send = async (batch: number, stage: Stage, paths: string[]) => {
    const wire = paths.map((p) => {
      const e = entries.find((x) => x.path === p);
      assert.ok(e, p);
      return entryToWire(e);
    });
    await Promise.all(
      workers.map((w) =>
        w.worker.sendBatch({ type: "TOC_BATCH", phase: "WRITE", stage, batch, entries: wire }),
      ),
    );
    return Promise.all(workers.map(async (w) => ({ name: w.name, result: await w.worker.result(batch) })));
  };

  it("copies what was crawled, and reports every entry under the swapped directory instead of copying outside", async () => {
    for (const w of workers) {
      await w.worker.waitReport((m) => m.type === "WORKER_STATE" && m.state === "INITIALIZED");
      await w.worker.publish({
        type: "MODE",
        phase: "WRITE",
        known: [`${w.name}-1`],
        failfast: false,
        sentAtMs: 0,
      });
    }
    // The run is copying: the first batch is done on every worker.
    for (const { name, result } of await send(0, "content", ["a.txt", "dir/first.txt"])) {
      assert.equal(result.ok, 2, `${name}: ${JSON.stringify(result)}`);
    }

    // The swap: dir/ becomes a symlink to the outside directory.
    await fs.rename(path.join(src, "dir"), path.join(tmp, "dir-moved"));
    await fs.symlink(path.join(tmp, "outside/dir"), path.join(src, "dir"));

    const seen: string[] = [];
    for (const { name, result } of await send(1, "content", [
      "dir/inside.txt",
      "dir/sub/deep.txt",
      "dir/link",
    ])) {
      assert.equal(result.ok, 0, `${name}: ${JSON.stringify(result)}`);
      assert.equal(result.failed, 3, `${name}: ${JSON.stringify(result)}`);
      for (const e of result.errors) seen.push(`${name} ${e.path}: ${e.reason}`);
      const reasons = Object.fromEntries(result.errors.map((e) => [e.path, e.reason]));
      // In a directory the worker already held as inside the source: what it opens is not what was crawled.
      assert.match(
        reasons["dir/inside.txt"] ?? "",
        /^changed during the run: the path leads to another file/,
        name,
      );
      assert.match(
        reasons["dir/link"] ?? "",
        /^changed during the run: the path leads to another symlink/,
        name,
      );
      // In one it had not looked at yet: its real path is outside the source.
      assert.match(
        reasons["dir/sub/deep.txt"] ?? "",
        /^(changed during the run: |refused: a parent directory in the source resolves outside the source root)/,
        name,
      );
    }
    for (const { name, result } of await send(2, "dirs", ["dir/sub", "dir", "."])) {
      const reasons = Object.fromEntries(result.errors.map((e) => [e.path, e.reason]));
      assert.equal(result.ok, 1, `${name}: the root is still the root: ${JSON.stringify(result)}`);
      assert.match(reasons.dir ?? "", /^changed during the run: now a symlink in the source/, name);
      assert.match(
        reasons["dir/sub"] ?? "",
        /^(changed during the run: |refused: a parent directory in the source resolves outside the source root)/,
        name,
      );
      for (const e of result.errors) seen.push(`${name} ${e.path}: ${e.reason}`);
    }
    console.log(`reported:\n  ${seen.join("\n  ")}`);

    // Nothing of the outside directory reached a target: only what was copied before the swap is there.
    for (const w of workers.filter((x) => !x.target.startsWith("s3://"))) {
      assert.deepEqual(await listTree(w.target), ["a.txt", "dir", "dir/first.txt"], w.name);
      assert.equal(
        await fs.readFile(path.join(w.target, "dir/first.txt"), "utf8"),
        "copied before the swap too\n",
      );
    }
    const listed = await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: "swap", Prefix: "s/" }));
    const keys = (listed.Contents ?? []).map((o) => o.Key ?? "").sort();
    assert.deepEqual(keys, ["s/", "s/a.txt", "s/dir/first.txt"]);
    for (const key of keys) {
      const got = await aws.clients.s3.send(new GetObjectCommand({ Bucket: "swap", Key: key }));
      const body = await (got.Body as { transformToString(): Promise<string> }).transformToString();
      assert.ok(!body.includes("OUTSIDE"), key);
    }
  });
});
