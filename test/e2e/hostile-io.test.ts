/**
 * The file systems turning against a run: a target that fills up, a target that becomes read-only mid-run, a
 * source root that disappears mid-run. Each run goes on to its end, and every entry is verified or reported.
 * (The targets are small tmpfs mounts: these tests run as root, as CI does.)
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { type LocalRun, startLocal } from "../helpers/run.ts";

describe("hostile file systems", { timeout: 240_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  const mounts: string[] = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests mount small file systems: run them as root (CI does)");
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-hostile-"));
  });

  after(async () => {
    for (const m of mounts) {
      try {
        execFileSync("umount", [m]);
      } catch {
        // already gone
      }
    }
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const tmpfs = async (name: string, size: string) => {
    const dir = path.join(tmp, name);
    await fs.mkdir(dir);
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
    mounts.push(dir);
    return dir;
  };

  const load = (name: string, source: string, target: string): LocalRun =>
    startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name,
      source,
      target,
      // Small batches keep the run going for a while: the faults below come once 100 entries are written.
      args: ["--workers", "2", "--concurrency", "2", "--batch-entries", "5", "--progress-ms", "200"],
    });

  const finished = async (run: LocalRun): Promise<RunReport> => {
    const { code } = await run.exited;
    assert.equal(code, 1, `entries failed: exit 1\n${run.stderr().slice(-2000)}`);
    const report = await run.report();
    const w = report.write;
    assert.equal(
      w.ok + w.failed + w.skipped + w.unchanged + report.notAttempted,
      report.entries,
      "all accounted",
    );
    assert.equal(report.notAttempted, 0);
    assert.equal(
      report.validate.ok + report.validate.failed,
      w.ok + w.unchanged,
      "every written entry checked",
    );
    return report;
  };

  it("a target that fills up: what fits is copied and verified, the rest is reported 'no space left'", async () => {
    const src = path.join(tmp, "src-full");
    await makeSampleTree(src, { files: 300, largeFiles: 2, seed: 11 }); // about 3 MB
    const target = await tmpfs("full", "1m");
    const report = await finished(load("full", src, target));
    assert.ok(report.write.ok > 50, "much of it fitted");
    assert.ok(
      report.errors.some((e) => /no space left on the target/.test(e.reason)),
      JSON.stringify(report.errors[0]),
    );
    assert.equal(report.validate.failed, 0, "what was recorded as written is really there");
  });

  it("a target that becomes read-only mid-run: later writes are reported 'read-only', earlier ones verified", async () => {
    const src = path.join(tmp, "src-ro");
    await makeSampleTree(src, { files: 1_500, largeFiles: 0, seed: 12 });
    const target = await tmpfs("ro", "64m");
    const run = load("ro", src, target);
    await run.waitFor((l) => l.event === "progress" && l.phase === "WRITE" && Number(l.written) >= 100);
    // The kernel refuses the remount (EBUSY) while a file is open for writing on it: try again until a moment
    // comes between two writes.
    for (let attempt = 1; ; attempt++) {
      try {
        execFileSync("mount", ["-o", "remount,ro", target], { stdio: "pipe" });
        break;
      } catch (err) {
        if (attempt >= 200 || !/busy/.test(String((err as { stderr?: Buffer }).stderr))) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const report = await finished(run);
    assert.ok(
      report.errors.some((e) => /the target is read-only/.test(e.reason)),
      JSON.stringify(report.errors[0]),
    );
    assert.ok(report.write.ok >= 100);
  });

  it("a source root that disappears mid-run: what was read is verified, the rest reported as vanished", async () => {
    const src = path.join(tmp, "src-gone");
    await makeSampleTree(src, { files: 1_500, largeFiles: 0, seed: 13 });
    const run = load("gone", src, path.join(tmp, "dst-gone"));
    await run.waitFor((l) => l.event === "progress" && l.phase === "WRITE" && Number(l.written) >= 100);
    await fs.rename(src, path.join(tmp, "src-gone-elsewhere"));
    const report = await finished(run);
    assert.ok(
      report.errors.some((e) => /source vanished|cannot list directory/.test(e.reason)),
      JSON.stringify(report.errors[0]),
    );
    assert.ok(report.write.ok >= 100);
  });
});
