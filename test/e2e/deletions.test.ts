import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startCli } from "../helpers/run.ts";

const BUCKET = "synced";

/** What the test removes from the source after the first run: a file, and a directory with what it holds. */
const GONE = ["gone-dir", "gone-dir/a.txt", "gone-dir/sub", "gone-dir/sub/b.txt", "gone.txt"];

describe("--delete: what the source lost since the last successful run is removed", {
  timeout: 300_000,
}, () => {
  let aws: TestAws;
  let tmp: string;
  let n = 0;

  const makeSource = async (name: string) => {
    const source = path.join(tmp, name);
    await makeSampleTree(source, { files: 60, largeFiles: 0, seed: 3 });
    await fs.mkdir(path.join(source, "gone-dir/sub"), { recursive: true });
    await fs.writeFile(path.join(source, "gone-dir/a.txt"), "a\n");
    await fs.writeFile(path.join(source, "gone-dir/sub/b.txt"), "b\n");
    await fs.writeFile(path.join(source, "gone.txt"), "gone\n");
    await fs.writeFile(path.join(source, "kept.txt"), "kept\n");
    return source;
  };
  const removeFromSource = async (source: string) => {
    await fs.rm(path.join(source, "gone-dir"), { recursive: true });
    await fs.rm(path.join(source, "gone.txt"));
  };

  /** A local run; every run of one test shares its state directory, where the runs' records are. */
  const local = async (source: string, target: string, state: string, extra: string[] = []) => {
    const report = path.join(tmp, `run-${++n}.json`);
    const run = startCli([
      "local",
      ...["--endpoint-url", aws.emulator.url, "--source", source, "--target", target],
      ...["--state-dir", state, "--name-prefix", `del${n}`, "--workers", "2", "--report", report],
      ...extra,
    ]);
    let stdout = "";
    run.child.stdout?.on("data", (d) => {
      stdout += d;
    });
    const { code } = await run.exited;
    return { code, stdout, stderr: run.stderr(), report: () => fs.readFile(report, "utf8").then(JSON.parse) };
  };
  const exists = async (key: string) => {
    try {
      await aws.clients.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false;
      throw err;
    }
  };
  const keyOf = (p: string) => `load/${p}${p === "gone-dir" || p === "gone-dir/sub" ? "/" : ""}`;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-delete-"));
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("deletes the objects of an S3 target, shown first by --dry-run and held back by --max-delete", async () => {
    const source = await makeSource("src-s3");
    const state = path.join(tmp, "state-s3");
    const target = `s3://${BUCKET}/load`;
    const first = await local(source, target, state);
    assert.equal(first.code, 0, first.stderr.slice(-3000));
    const firstReport: RunReport = await first.report();
    for (const p of [...GONE, "kept.txt"]) assert.equal(await exists(keyOf(p)), true, `${p} was written`);

    await removeFromSource(source);

    const dry = await local(source, target, state, ["--delete", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr.slice(-3000));
    const shown = JSON.parse(dry.stdout);
    assert.deepEqual(shown.deletions, { previousRun: firstReport.runId, paths: GONE, note: null });
    for (const p of GONE) assert.equal(await exists(keyOf(p)), true, `${p} is still there after the dry run`);

    const capped = await local(source, target, state, ["--delete", "--max-delete", "4"]);
    assert.equal(capped.code, 1, capped.stderr.slice(-3000));
    const cappedReport: RunReport = await capped.report();
    assert.match(
      cappedReport.failureReason ?? "",
      /--delete would remove 5 entries .* more than --max-delete 4: nothing was deleted/,
    );
    assert.equal(cappedReport.deletions?.deleted, 0);
    for (const p of GONE) assert.equal(await exists(keyOf(p)), true, `${p} is still there after the refusal`);

    const synced = await local(source, target, state, ["--delete", "--max-delete", "5"]);
    assert.equal(synced.code, 0, synced.stderr.slice(-3000));
    const report: RunReport = await synced.report();
    // The refused run did not succeed: the one compared with is still the first.
    assert.deepEqual(report.deletions, {
      previousRun: firstReport.runId,
      paths: GONE,
      deleted: 5,
      failed: [],
      note: null,
    });
    for (const p of GONE) assert.equal(await exists(keyOf(p)), false, `${p} was deleted`);
    assert.equal(await exists("load/kept.txt"), true);
    assert.equal(await exists("load/"), true, "the root's marker stays");
  });

  it("deletes the files and directories of a directory target", async () => {
    const source = await makeSource("src-dir");
    const state = path.join(tmp, "state-dir");
    const target = path.join(tmp, "dst-dir");
    const first = await local(source, target, state);
    assert.equal(first.code, 0, first.stderr.slice(-3000));
    await removeFromSource(source);

    const synced = await local(source, target, state, ["--delete"]);
    assert.equal(synced.code, 0, synced.stderr.slice(-3000));
    const report: RunReport = await synced.report();
    assert.equal(report.deletions?.deleted, GONE.length);
    assert.deepEqual(report.deletions?.paths, GONE);
    for (const p of GONE) await assert.rejects(fs.lstat(path.join(target, p)), { code: "ENOENT" });
    assert.equal(await fs.readFile(path.join(target, "kept.txt"), "utf8"), "kept\n");

    // Nothing more went since: a further run deletes nothing.
    const again = await local(source, target, state, ["--delete"]);
    assert.equal(again.code, 0, again.stderr.slice(-3000));
    const quiet: RunReport = await again.report();
    assert.equal(quiet.deletions?.deleted, 0);
    assert.deepEqual(quiet.deletions?.paths, []);
  });
});
