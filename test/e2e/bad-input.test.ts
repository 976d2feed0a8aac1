/**
 * A source with entries that cannot be copied, loaded by an unprivileged user (as root, file modes do not
 * stop reads): each gets its line in the report, the run goes on, everything else arrives.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startLocal, unprivileged } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

describe("bad input", { timeout: 120_000 }, () => {
  let aws: TestAws;
  let tmp: string;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-bad-"));
    await fs.chmod(tmp, 0o777);
  });

  after(async () => {
    await aws?.close();
    if (tmp) {
      await fs.chmod(path.join(tmp, "src/locked dir"), 0o755).catch(() => {});
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it("reports unreadable files and directories, special files and non-UTF-8 names, and copies the rest", async () => {
    const src = path.join(tmp, "src");
    await fs.mkdir(path.join(src, "sub"), { recursive: true });
    for (let i = 0; i < 30; i++) await fs.writeFile(path.join(src, "sub", `good ${i}.txt`), `good ${i}\n`);
    await fs.writeFile(path.join(src, "unreadable.txt"), "secret\n");
    await fs.chmod(path.join(src, "unreadable.txt"), 0o000);
    await fs.mkdir(path.join(src, "locked dir"));
    await fs.writeFile(path.join(src, "locked dir", "inside.txt"), "cannot be listed\n");
    await fs.chmod(path.join(src, "locked dir"), 0o000);
    execFileSync("mkfifo", [path.join(src, "pipe")]);
    const badName = Buffer.concat([
      Buffer.from(`${src}/bad-`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(".txt"),
    ]);
    await fs.writeFile(badName, "latin-1 name\n");

    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: "bad",
      source: src,
      target: path.join(tmp, "dst"),
      args: ["--workers", "2"],
      as: unprivileged(),
    });
    const { code } = await run.exited;
    assert.equal(code, 1, run.stderr().slice(-3000));
    const report = await run.report();
    assert.equal(report.outcome, "failed");

    const err = (p: string) => report.errors.find((e) => e.path === p);
    assert.equal(err("unreadable.txt")?.phase, "WRITE");
    assert.match(err("unreadable.txt")?.reason ?? "", /permission denied/);
    assert.equal(err("locked dir")?.phase, "crawl");
    assert.match(
      err("locked dir")?.reason ?? "",
      /cannot list directory \(EACCES\): its contents were not copied/,
    );
    assert.equal(err("bad-\\xff\\xfe.txt")?.phase, "crawl");
    assert.match(err("bad-\\xff\\xfe.txt")?.reason ?? "", /not valid UTF-8/);
    assert.deepEqual(report.skipped, [
      { path: "pipe", reason: "special file (fifo): not copied", phase: "crawl" },
    ]);

    // Every entry is accounted for: the root, 30 good files, sub, locked dir, unreadable.txt, pipe, the bad name.
    assert.equal(report.entries, 36);
    assert.deepEqual(report.write, { ok: 33, failed: 2, skipped: 1, unchanged: 0 });
    assert.deepEqual(report.validate, { ok: 33, failed: 0 });
    assert.equal(report.notAttempted, 0);

    const expectedMissing = new Set(["unreadable.txt", "pipe", "locked dir/inside.txt"]);
    for (const p of await listTree(src)) if (p.startsWith("bad-")) expectedMissing.add(p);
    assert.deepEqual(
      await diffTrees(src, path.join(tmp, "dst"), { owner: false, except: expectedMissing }),
      [],
    );
  });
});
