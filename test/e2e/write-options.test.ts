/**
 * The write options end to end, into moto's S3 (the Node emulator keeps no classes, tags, conditional writes
 * or KMS): a load with a storage class, SSE-KMS under a key of moto's KMS and tags, read back with the SDK,
 * single PUTs and a multipart object alike; VALIDATE finding objects not stored as asked; `--no-overwrite`
 * over changed files, by the HEAD before the write and by S3's own 412; an archive class; bad combinations.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CopyObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
} from "@aws-sdk/client-s3";
import { type AwsClients, makeClients } from "../../core/aws/clients.ts";
import type { RunReport } from "../../master/report.ts";
import type { TestAws } from "../helpers/aws.ts";
import { driveWorker } from "../helpers/driver.ts";
import { MOTO_KEYS, MOTO_REGION, type Moto, startMoto } from "../helpers/moto.ts";
import { startCli, startLocal } from "../helpers/run.ts";

const BUCKET = "options";
const PREFIX = "o";
const RUN_ID = "opts-run-1";
const BIG = 6 * 1024 * 1024 + 17;

/** A key of moto's KMS (CreateKey by hand: the project has no KMS client, and needs none). */
async function createKey(moto: Moto): Promise<{ id: string; arn: string }> {
  const r = await fetch(`${moto.url}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "TrentService.CreateKey",
      authorization: `AWS4-HMAC-SHA256 Credential=${MOTO_KEYS.accessKeyId}/20260101/${MOTO_REGION}/kms/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify({ Description: "s3-bucket-loader test" }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const meta = ((await r.json()) as { KeyMetadata: { KeyId: string; Arn: string } }).KeyMetadata;
  return { id: meta.KeyId, arn: meta.Arn };
}

describe("write options into moto's S3", { timeout: 600_000 }, () => {
  let moto: Moto;
  let clients: AwsClients;
  let tmp: string;
  let src: string;
  let key: { id: string; arn: string };
  let other: { id: string; arn: string };
  let runs = 0;

  const load = async (extra: readonly string[], target = `s3://${BUCKET}/${PREFIX}`): Promise<RunReport> => {
    const run = startLocal({
      endpoint: moto.url,
      dir: tmp,
      name: `wo${++runs}`,
      source: src,
      target,
      args: ["--workers", "2", "--multipart-threshold-mb", "5", "--part-size-mb", "5", ...extra],
    });
    const { code } = await run.exited;
    const report = await run.report();
    assert.ok(code === 0 || report.outcome === "failed", run.stderr().slice(-3000));
    return report;
  };
  const head = (k: string, bucket = BUCKET) =>
    clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k, ChecksumMode: "ENABLED" }));
  const tags = async (k: string, bucket = BUCKET) =>
    (await clients.s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: k }))).TagSet?.map(
      (t) => `${t.Key}=${t.Value}`,
    );
  const body = async (k: string) => {
    const out = await clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }));
    return Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  };
  const keys = async (bucket: string) =>
    ((await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [])
      .map((o) => o.Key ?? "")
      .sort();
  const KMS = () => ["--sse", "aws:kms", "--sse-kms-key-id", key.arn];
  const OPTIONS = () => [
    "--storage-class",
    "STANDARD_IA",
    ...KMS(),
    "--tag",
    "project=alpha",
    "--tag",
    "team=data ops",
    "--tag-run-id",
    "--run-id",
    RUN_ID,
  ];

  before(async () => {
    moto = await startMoto();
    clients = makeClients({ region: MOTO_REGION, endpoint: moto.url, maxSockets: 8, credentials: MOTO_KEYS });
    key = await createKey(moto);
    other = await createKey(moto);
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-wo-"));
    src = path.join(tmp, "src");
    await fs.mkdir(path.join(src, "dir"), { recursive: true });
    await fs.writeFile(path.join(src, "file.txt"), "first version\n");
    await fs.writeFile(path.join(src, "dir/kept.txt"), "never changes\n");
    const big = Buffer.alloc(BIG);
    for (let i = 0; i + 4 <= big.length; i += 4096) big.writeUInt32BE(i, i);
    await fs.writeFile(path.join(src, "dir/big.bin"), big);
    await fs.symlink("dir/kept.txt", path.join(src, "link"));
  });

  after(async () => {
    clients?.destroy();
    await moto?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("stores every object in the class, under the KMS key and with the tags asked, single PUT and multipart alike", async () => {
    const report = await load(OPTIONS());
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors));
    assert.equal(report.write.ok, 6);
    assert.equal(report.validate.ok, 6);
    const objects = ["o/", "o/file.txt", "o/dir/", "o/dir/kept.txt", "o/dir/big.bin", "o/link"];
    assert.deepEqual(await keys(BUCKET), [...objects].sort());
    for (const k of objects) {
      const h = await head(k);
      assert.equal(h.StorageClass, "STANDARD_IA", k);
      assert.equal(h.ServerSideEncryption, "aws:kms", k);
      assert.equal(h.SSEKMSKeyId, key.arn, k);
      assert.deepEqual(await tags(k), ["project=alpha", "team=data ops", `s3bl:run-id=${RUN_ID}`], k);
    }
    // The single PUTs ask for bucket keys and moto says so; it does not report them for multipart objects.
    assert.equal((await head("o/file.txt")).BucketKeyEnabled, true);
    const big = await head("o/dir/big.bin");
    assert.match(big.ETag ?? "", /-2"$/, "the large file went up in two parts");
    assert.equal(big.ContentLength, BIG);
  });

  it("VALIDATE reports objects in another class, encrypted otherwise or under another key", async () => {
    const copy = (k: string, change: Record<string, string>) =>
      clients.s3.send(
        new CopyObjectCommand({
          Bucket: BUCKET,
          Key: k,
          CopySource: `${BUCKET}/${k}`,
          MetadataDirective: "COPY",
          ChecksumAlgorithm: "CRC32",
          StorageClass: "STANDARD_IA",
          ...change,
        }),
      );
    await copy("o/file.txt", { ServerSideEncryption: "AES256" });
    await copy("o/dir/kept.txt", { ServerSideEncryption: "aws:kms", SSEKMSKeyId: other.arn });
    await copy("o/link", { ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.arn, StorageClass: "STANDARD" });
    const aws = { clients, emulator: { url: moto.url } } as unknown as TestAws;
    const worker = await driveWorker(aws, {
      name: "wocheck",
      runId: "wocheck",
      source: src,
      target: `s3://${BUCKET}/${PREFIX}`,
      endpoint: moto.url,
      args: ["--storage-class", "STANDARD_IA", ...KMS()],
    });
    try {
      await worker.waitReport((m) => m.type === "WORKER_STATE" && m.state === "INITIALIZED");
      await worker.publish({
        type: "MODE",
        phase: "VALIDATE",
        known: ["wocheck-1"],
        failfast: false,
        sentAtMs: 0,
      });
      const lstat = (p: string) => fs.lstat(path.join(src, p), { bigint: true });
      const [file, kept, link, big] = await Promise.all(
        ["file.txt", "dir/kept.txt", "link", "dir/big.bin"].map(lstat),
      );
      await worker.sendBatch({
        type: "TOC_BATCH",
        phase: "VALIDATE",
        stage: "content",
        batch: 0,
        entries: [
          ["file.txt", "f", Number(file?.size), String(file?.mtimeNs)],
          ["dir/kept.txt", "f", Number(kept?.size), String(kept?.mtimeNs)],
          ["link", "l", Number(link?.size), String(link?.mtimeNs)],
          ["dir/big.bin", "f", BIG, String(big?.mtimeNs)],
        ],
      });
      const result = await worker.result(0);
      const reasons = Object.fromEntries(result.errors.map((e) => [e.path, e.reason]));
      assert.equal(result.ok, 1, `only the untouched object passes: ${JSON.stringify(result.errors)}`);
      assert.match(reasons["file.txt"] ?? "", /encryption AES256 in the bucket, aws:kms asked/);
      assert.match(
        reasons["dir/kept.txt"] ?? "",
        new RegExp(`KMS key ${other.arn} in the bucket, ${key.arn} asked`),
      );
      assert.match(reasons.link ?? "", /storage class STANDARD in the bucket, STANDARD_IA asked/);
      await worker.publish({ type: "SHUTDOWN", reason: "test over" });
      assert.equal((await worker.proc.exited).code, 0);
    } finally {
      worker.proc.child.kill("SIGKILL");
    }

    // A re-run writes again exactly what is not stored as asked, and leaves the rest unchanged.
    const report = await load(OPTIONS());
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors));
    assert.equal(report.write.ok, 3);
    assert.equal(report.write.unchanged, 3);
    assert.equal((await head("o/file.txt")).ServerSideEncryption, "aws:kms");
    assert.equal((await head("o/dir/kept.txt")).SSEKMSKeyId, key.arn);
    assert.equal((await head("o/link")).StorageClass, "STANDARD_IA");
  });

  for (const [how, extra] of [
    ["the HEAD before the write", []],
    ["S3's 412 to If-None-Match (no HEAD first: --target-empty)", ["--target-empty"]],
  ] as const) {
    it(`--no-overwrite reports changed files as existing and different, found by ${how}, and replaces nothing`, async () => {
      const before = { file: await body("o/file.txt"), big: await head("o/dir/big.bin") };
      await fs.writeFile(path.join(src, "file.txt"), `a changed version, ${how}\n`);
      const bigFile = path.join(src, "dir/big.bin");
      const bytes = await fs.readFile(bigFile);
      bytes[BIG - 1] = (bytes[BIG - 1] ?? 0) ^ 0xff;
      await fs.writeFile(bigFile, bytes);
      await fs.utimes(bigFile, 1_700_000_000 + runs, 1_700_000_000 + runs);

      const report = await load([...OPTIONS(), "--no-overwrite", ...extra]);
      assert.equal(report.outcome, "failed");
      const reasons = Object.fromEntries(report.errors.map((e) => [e.path, e.reason]));
      assert.deepEqual(Object.keys(reasons).sort(), ["dir/big.bin", "file.txt"]);
      assert.match(
        reasons["file.txt"] ?? "",
        /^exists and differs, not overwritten \(--no-overwrite\): size \d+ in the bucket/,
      );
      assert.match(
        reasons["dir/big.bin"] ?? "",
        /^exists and differs, not overwritten \(--no-overwrite\): st_mtime/,
      );
      assert.equal(report.write.unchanged, 4, "the directories, the link and the file that did not change");
      assert.equal(report.write.ok, 0);
      assert.deepEqual(await body("o/file.txt"), before.file);
      const big = await head("o/dir/big.bin");
      assert.equal(big.ETag, before.big.ETag);
      assert.equal(big.ChecksumCRC32, before.big.ChecksumCRC32);
    });
  }

  it("loads files into an archive class when allowed, keeping directory markers and links readable in STANDARD", async () => {
    const report = await load(
      ["--storage-class", "GLACIER", "--allow-archive-classes", "--target-empty"],
      "s3://archive/a",
    );
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors));
    assert.equal(report.validate.ok, 6);
    assert.equal((await head("a/file.txt", "archive")).StorageClass, "GLACIER");
    assert.equal((await head("a/dir/big.bin", "archive")).StorageClass, "GLACIER");
    assert.equal((await head("a/link", "archive")).StorageClass, undefined);
    assert.equal((await head("a/dir/", "archive")).StorageClass, undefined);
    // What the refusal without --allow-archive-classes is about: the file's bytes cannot be read now.
    await assert.rejects(
      clients.s3.send(new GetObjectCommand({ Bucket: "archive", Key: "a/file.txt" })),
      /not valid for the object's storage class/,
    );
  });

  const toBucket = `s3://${BUCKET}/refused`;
  const refusals: [string, string[], RegExp][] = [
    [
      "an archive class without --allow-archive-classes",
      ["--target", toBucket, "--storage-class", "DEEP_ARCHIVE"],
      /--allow-archive-classes/,
    ],
    [
      "a class only directory buckets take",
      ["--target", toBucket, "--storage-class", "EXPRESS_ONEZONE"],
      /only for directory buckets/,
    ],
    [
      "a KMS key without --sse aws:kms",
      ["--target", toBucket, "--sse-kms-key-id", "1234abcd-12ab-34cd-56ef-1234567890ab"],
      /needs --sse aws:kms/,
    ],
    [
      "write options for a directory target",
      ["--target", "/nonexistent/target", "--no-overwrite"],
      /written by yas3fs/,
    ],
  ];
  for (const [name, args, message] of refusals) {
    it(`refuses ${name} with exit 2, before starting anything`, async () => {
      const p = startCli(["local", "--source", src, ...args]);
      const { code } = await p.exited;
      assert.equal(code, 2, p.stderr().slice(-2000));
      assert.match(p.stderr(), message);
    });
  }
});
