/**
 * Loads straight into the emulator's S3 and reads the objects back with the SDK, as yas3fs would: keys,
 * Content-Types, `attr`, bodies; then re-runs (nothing copied again), changes a file (only it copied again),
 * and tampers with an object (VALIDATE reports it).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { crc32Base64 } from "../../core/checksum.ts";
import type { RunReport } from "../../master/report.ts";
import { attrSeconds } from "../../worker/targets/times.ts";
import { parseAttr } from "../../worker/targets/yas3fs-format.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { driveWorker } from "../helpers/driver.ts";
import { startLocal } from "../helpers/run.ts";
import { listTree } from "../helpers/tree.ts";

const BUCKET = "golden";
const PREFIX = "g";

describe("the direct S3 target", { timeout: 240_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let src: string;
  let runs = 0;

  const load = async (extra: string[] = []): Promise<RunReport> => {
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: `s3t${++runs}`,
      source: src,
      target: `s3://${BUCKET}/${PREFIX}`,
      args: ["--workers", "2", "--multipart-threshold-mb", "5", "--part-size-mb", "5", ...extra],
    });
    const { code } = await run.exited;
    const report = await run.report();
    assert.ok(code === 0 || report.outcome === "failed", run.stderr().slice(-3000));
    return report;
  };
  const head = (key: string) =>
    aws.clients.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }));
  const body = async (key: string) => {
    const out = await aws.clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  };

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-s3t-"));
    src = path.join(tmp, "src");
    await fs.mkdir(path.join(src, "dir/nested"), { recursive: true });
    await fs.mkdir(path.join(src, "emptydir"));
    await fs.writeFile(path.join(src, "file.txt"), "hello yas3fs\n");
    await fs.writeFile(path.join(src, "dir/nested.bin"), "nested content 12345\n");
    await fs.writeFile(path.join(src, "dir/nested/.hidden"), "");
    await fs.writeFile(path.join(src, "naïve name 日本.txt"), "unicode\n");
    const big = Buffer.alloc(12 * 1024 * 1024 + 321);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    await fs.writeFile(path.join(src, "dir/big.bin"), big);
    await fs.symlink("dir/nested.bin", path.join(src, "link"));
    await fs.chmod(path.join(src, "file.txt"), 0o640);
    await fs.chmod(path.join(src, "emptydir"), 0o750);
    await fs.utimes(path.join(src, "file.txt"), 1600000000, 1600000000);
    await fs.utimes(path.join(src, "emptydir"), 1500000000, 1500000000);
    if (process.getuid?.() === 0) await fs.chown(path.join(src, "file.txt"), 1234, 5678);
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("writes every entry as the object yas3fs expects, and VALIDATE agrees", async () => {
    const report = await load();
    const entries = (await listTree(src)).length + 1;
    assert.equal(report.outcome, "succeeded", JSON.stringify(report.errors));
    assert.deepEqual(report.write, { ok: entries, failed: 0, skipped: 0, unchanged: 0 });
    assert.deepEqual(report.validate, { ok: entries, failed: 0 });

    const listed = await aws.clients.s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}/` }),
    );
    const keys = (listed.Contents ?? []).map((o) => o.Key).sort();
    assert.deepEqual(keys, [
      "g/",
      "g/dir/",
      "g/dir/big.bin",
      "g/dir/nested.bin",
      "g/dir/nested/",
      "g/dir/nested/.hidden",
      "g/emptydir/",
      "g/file.txt",
      "g/link",
      "g/naïve name 日本.txt",
    ]);

    const root = await head("g/");
    const rootSt = await fs.lstat(src, { bigint: true });
    assert.equal(root.ContentType, "application/x-directory");
    assert.equal(parseAttr(root.Metadata?.attr)?.mtime, attrSeconds(rootSt.mtimeNs));

    const file = await head("g/file.txt");
    assert.equal(file.ContentType, "text/plain");
    assert.equal(file.ContentLength, 13);
    const fileAttr = JSON.parse(file.Metadata?.attr ?? "{}");
    assert.equal(fileAttr.st_mode, 0o100640);
    assert.equal(fileAttr.st_mtime, 1600000000);
    if (process.getuid?.() === 0) assert.deepEqual([fileAttr.st_uid, fileAttr.st_gid], [1234, 5678]);
    assert.equal(file.ChecksumCRC32, crc32Base64("hello yas3fs\n"));

    const empty = await head("g/emptydir/");
    assert.equal(empty.ContentType, "application/x-directory");
    assert.equal(empty.ContentLength, 0);
    assert.equal(JSON.parse(empty.Metadata?.attr ?? "{}").st_mode, 0o40750);
    assert.equal(JSON.parse(empty.Metadata?.attr ?? "{}").st_mtime, 1500000000);

    const link = await head("g/link");
    assert.equal(link.ContentType, "application/x-symlink");
    assert.equal((await body("g/link")).toString(), "dir/nested.bin");
    assert.equal(JSON.parse(link.Metadata?.attr ?? "{}").st_mode & 0o170000, 0o120000);

    const big = await head("g/dir/big.bin");
    assert.equal(big.ContentLength, 12 * 1024 * 1024 + 321);
    assert.ok(big.ETag?.includes("-3"), `a multipart upload of 3 parts, ETag ${big.ETag}`);
    for (const rel of ["dir/big.bin", "dir/nested.bin", "naïve name 日本.txt", "dir/nested/.hidden"]) {
      const want = createHash("sha256")
        .update(await fs.readFile(path.join(src, rel)))
        .digest("hex");
      const got = createHash("sha256")
        .update(await body(`g/${rel}`))
        .digest("hex");
      assert.equal(got, want, rel);
    }
  });

  it("a second run copies nothing and reports every entry unchanged", async () => {
    const report = await load();
    const entries = (await listTree(src)).length + 1;
    assert.equal(report.outcome, "succeeded");
    assert.deepEqual(report.write, { ok: 0, failed: 0, skipped: 0, unchanged: entries });
    assert.deepEqual(report.validate, { ok: entries, failed: 0 });
  });

  it("a changed file is copied again, and only it", async () => {
    await fs.writeFile(path.join(src, "dir/nested.bin"), "nested content, changed\n");
    const report = await load();
    assert.equal(report.write.ok, 1);
    assert.equal(report.write.unchanged, (await listTree(src)).length);
    assert.equal((await body("g/dir/nested.bin")).toString(), "nested content, changed\n");
  });

  it("VALIDATE reports an object whose stored checksum is not the one read from the source", async () => {
    // What a corrupted upload leaves where the store does not check checksums: same size, same attr, the
    // CRC32 we recorded when reading the source, but another body and checksum.
    const original = await head("g/file.txt");
    await aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "g/file.txt",
        Body: "HELLO yas3fs\n",
        ContentType: original.ContentType,
        Metadata: original.Metadata,
        ChecksumCRC32: crc32Base64("HELLO yas3fs\n"),
      }),
    );
    const worker = await driveWorker(aws, {
      name: "s3check",
      runId: "s3check",
      source: src,
      target: `s3://${BUCKET}/${PREFIX}`,
    });
    try {
      await worker.waitReport((m) => m.type === "WORKER_STATE" && m.state === "INITIALIZED");
      await worker.publish({
        type: "MODE",
        phase: "VALIDATE",
        known: ["s3check-1"],
        failfast: false,
        sentAtMs: 0,
      });
      const st = await fs.lstat(path.join(src, "file.txt"), { bigint: true });
      await worker.sendBatch({
        type: "TOC_BATCH",
        phase: "VALIDATE",
        stage: "content",
        batch: 0,
        entries: [
          ["file.txt", "f", 13, st.mtimeNs.toString()],
          ["dir/big.bin", "f", 12 * 1024 * 1024 + 321, "0"],
          ["gone.txt", "f", 1, "0"],
        ],
      });
      const result = await worker.result(0);
      const reasons = Object.fromEntries(result.errors.map((e) => [e.path, e.reason]));
      assert.equal(
        result.ok,
        1,
        `the multipart object checks out against the source read again: ${JSON.stringify(result.errors)}`,
      );
      assert.match(
        reasons["file.txt"] ?? "",
        /checksum .* in the bucket, .* computed from the source when it was read/,
      );
      assert.match(reasons["gone.txt"] ?? "", /missing in the bucket/);

      // A re-run does not trust the tampered object: it writes it again.
      await worker.publish({ type: "SHUTDOWN", reason: "test over" });
      assert.equal((await worker.proc.exited).code, 0);
      const report = await load();
      assert.equal(report.outcome, "succeeded");
      assert.equal(report.write.ok, 1);
      assert.equal((await body("g/file.txt")).toString(), "hello yas3fs\n");
    } finally {
      worker.proc.child.kill("SIGKILL");
    }
  });

  it("mirrors the bucket to another, keeping every object's metadata and body, and re-runs to unchanged", async () => {
    const mirror = async () => {
      const run = startLocal({
        endpoint: aws.emulator.url,
        dir: tmp,
        name: `mir${++runs}`,
        source: `s3://${BUCKET}/${PREFIX}`,
        target: "s3://mirror/m",
        args: ["--workers", "2", "--multipart-threshold-mb", "5", "--part-size-mb", "5"],
      });
      const { code } = await run.exited;
      assert.equal(code, 0, run.stderr().slice(-3000));
      return run.report();
    };
    const listKeys = async (bucket: string, prefix: string) =>
      (
        (await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ??
        []
      )
        .map((o) => o.Key ?? "")
        .sort();
    const sourceKeys = await listKeys(BUCKET, "g/");
    const first = await mirror();
    assert.equal(first.entries, sourceKeys.length);
    assert.deepEqual(first.write, { ok: sourceKeys.length, failed: 0, skipped: 0, unchanged: 0 });
    assert.deepEqual(first.validate, { ok: sourceKeys.length, failed: 0 });
    const copied = await listKeys("mirror", "m/");
    assert.deepEqual(
      copied,
      sourceKeys.map((k) => `m/${k.slice(2)}`),
    );
    for (const k of sourceKeys) {
      const [a, b] = await Promise.all([
        head(k),
        aws.clients.s3.send(new HeadObjectCommand({ Bucket: "mirror", Key: `m/${k.slice(2)}` })),
      ]);
      assert.deepEqual(b.Metadata, a.Metadata, k);
      assert.equal(b.ContentType, a.ContentType, k);
      const got = await aws.clients.s3.send(
        new GetObjectCommand({ Bucket: "mirror", Key: `m/${k.slice(2)}` }),
      );
      const bytes = Buffer.from(
        await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      assert.ok(bytes.equals(await body(k)), k);
    }
    const again = await mirror();
    assert.deepEqual(again.write, { ok: 0, failed: 0, skipped: 0, unchanged: sourceKeys.length });
  });

  it("tells live yas3fs mounts about the new objects through yas3fs's topic, one reset per directory", async () => {
    const { CreateTopicCommand, SubscribeCommand } = await import("@aws-sdk/client-sns");
    const { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } = await import(
      "@aws-sdk/client-sqs"
    );
    const topicArn =
      (await aws.clients.sns.send(new CreateTopicCommand({ Name: "yas3fs-cache" }))).TopicArn ?? "";
    const queueUrl =
      (await aws.clients.sqs.send(new CreateQueueCommand({ QueueName: "yas3fs-node" }))).QueueUrl ?? "";
    const queueArn = (
      await aws.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
      )
    ).Attributes?.QueueArn;
    await aws.clients.sns.send(
      new SubscribeCommand({ TopicArn: topicArn, Protocol: "sqs", Endpoint: queueArn }),
    );
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: "ntf",
      source: src,
      target: "s3://notified/n",
      args: ["--workers", "1", "--yas3fs-topic-arn", topicArn],
    });
    assert.equal((await run.exited).code, 0, run.stderr().slice(-3000));
    const seen: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      const out = await aws.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      );
      // Delivered as yas3fs reads it: an SNS envelope whose Message is the JSON array.
      for (const m of out.Messages ?? []) seen.push(JSON.parse(JSON.parse(m.Body ?? "{}").Message));
      if ((out.Messages ?? []).length === 0) break;
    }
    const dirs = seen.map((m) => {
      assert.ok(Array.isArray(m) && m[0] === "all" && m[1] === "reset", JSON.stringify(m));
      return m[2];
    });
    assert.deepEqual([...new Set(dirs)].sort(), ["/", "/dir", "/dir/nested"]);
  });
});
