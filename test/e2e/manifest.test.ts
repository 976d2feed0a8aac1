import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { makeSampleTree } from "../../local/sample-tree.ts";
import { decodeManifestLine, type ManifestLine } from "../../master/manifest-line.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { CLI, startLocal, testEnv } from "../helpers/run.ts";
import { listTree } from "../helpers/tree.ts";

const BUCKET = "manifested";
const LONG = Array.from({ length: 5 }, (_, i) => `${i}${"d".repeat(210)}`).join("/");

function crc32(data: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(zlib.crc32(data) >>> 0);
  return `crc32:${b.toString("base64")}`;
}

function parse(text: string): ManifestLine[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map(decodeManifestLine);
}

describe("the verification manifest, end to end into the emulator", { timeout: 300_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let source: string;
  let tree: string[];
  let runs = 0;

  const load = async (manifest: string, extra: string[] = []): Promise<RunReport> => {
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: `mf${++runs}`,
      source,
      target: `s3://${BUCKET}/load`,
      args: ["--workers", "2", "--batch-entries", "20", "--manifest-out", manifest, ...extra],
    });
    const { code } = await run.exited;
    const report: RunReport = await run.report();
    // The tree holds an entry that cannot be written (its key is too long) and one the crawl cannot read.
    assert.equal(code, 1, run.stderr().slice(-3000));
    assert.equal(report.outcome, "failed");
    return report;
  };

  /** Every line is one entry of the tree (or the root), each path once, as many as the report's entries. */
  const checkAgainstTree = (lines: ManifestLine[], report: RunReport) => {
    assert.equal(lines.length, report.entries);
    assert.deepEqual(report.manifest?.lines, lines.length);
    const paths = lines.map((l) => l.path);
    assert.equal(new Set(paths).size, paths.length, "every path once");
    // What the crawl did not take has no kind: the FIFO (skipped) and the name that is not UTF-8 (failed).
    const crawlOnly = lines.filter((l) => l.kind === null).map((l) => [l.path.slice(0, 4), l.outcome]);
    assert.deepEqual(crawlOnly.sort(), [
      ["a-fi", "skipped"],
      ["bad-", "failed"],
    ]);
    const listed = paths.filter((p) => !p.startsWith("bad-"));
    assert.deepEqual(listed.sort(), [".", ...tree].sort());
    const byPath = new Map(lines.map((l) => [l.path, l]));
    const fifo = byPath.get("a-fifo");
    assert.equal(fifo?.outcome, "skipped");
    assert.match(fifo?.reason ?? "", /fifo/);
    const long = byPath.get(`${LONG}/f.txt`);
    assert.equal(long?.outcome, "failed");
    assert.match(long?.reason ?? "", /over S3's limit of 1024/);
    return byPath;
  };

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-manifest-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 150, largeFiles: 0, seed: 5 });
    await fs.writeFile(path.join(source, "known.txt"), "a known body\n");
    await fs.mkdir(path.join(source, LONG), { recursive: true });
    await fs.writeFile(path.join(source, LONG, "f.txt"), "too deep for a key\n");
    spawnSync("mkfifo", [path.join(source, "a-fifo")]);
    tree = await listTree(source);
    await fs.writeFile(
      Buffer.concat([Buffer.from(`${source}/bad-`), Buffer.from([0xff]), Buffer.from("-name")]),
      "x",
    );
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("lists every entry of the tree once, with the outcome and checksum of each, in a file", async () => {
    const file = path.join(tmp, "first.jsonl");
    const page = path.join(tmp, "first.html");
    const report = await load(file, ["--report-html", page]);
    const byPath = checkAgainstTree(parse(await fs.readFile(file, "utf8")), report);
    const known = byPath.get("known.txt");
    assert.equal(known?.outcome, "verified");
    assert.equal(known?.kind, "file");
    assert.equal(known?.size, 13);
    assert.equal(known?.checksum, crc32(Buffer.from("a known body\n")));
    const st = await fs.stat(path.join(source, "known.txt"), { bigint: true });
    assert.equal(known?.mtimeNs, st.mtimeNs.toString());
    assert.equal(byPath.get(".")?.outcome, "verified");
    const verified = [...byPath.values()].filter((l) => l.outcome === "verified").length;
    assert.equal(verified, report.validate.ok);

    // The report page links it beside itself; `status` names it.
    assert.match(
      await fs.readFile(page, "utf8"),
      /<a href="first\.jsonl">[^<]*first\.jsonl<\/a> \([\d,]+ lines/,
    );
    const status = spawnSync(
      process.execPath,
      [CLI, "status", "--state-dir", path.join(tmp, "state-mf1"), "--run-id", report.runId],
      { encoding: "utf8", env: testEnv() },
    );
    assert.equal(status.status, 0, status.stderr);
    assert.match(
      status.stdout,
      new RegExp(`manifest ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(${report.entries} lines`),
    );
  });

  it("says which entries a re-run found unchanged, gzipped when the name ends in .gz", async () => {
    const file = path.join(tmp, "second.jsonl.gz");
    const report = await load(file);
    const lines = parse(zlib.gunzipSync(await fs.readFile(file)).toString("utf8"));
    const byPath = checkAgainstTree(lines, report);
    const known = byPath.get("known.txt");
    assert.equal(known?.outcome, "unchanged-verified");
    assert.equal(known?.checksum, crc32(Buffer.from("a known body\n")));
    const unchanged = lines.filter((l) => l.outcome === "unchanged-verified").length;
    assert.equal(unchanged, report.write.unchanged);
    assert.ok(unchanged > 150, `${unchanged} entries found unchanged`);
  });

  it("uploads the manifest to an s3:// key, read back with the SDK", async () => {
    const report = await load(`s3://${BUCKET}/manifests/third.jsonl`);
    assert.equal(report.manifest?.destination, `s3://${BUCKET}/manifests/third.jsonl`);
    const out = await aws.clients.s3.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: "manifests/third.jsonl" }),
    );
    const text = Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    ).toString("utf8");
    checkAgainstTree(parse(text), report);
  });
});
