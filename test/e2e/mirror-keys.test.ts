/**
 * A bucket mirror over keys that yas3fs's layout cannot name as themselves (`PREFIX/.`, `PREFIX/./`, `./`),
 * beside odd keys it can (`a//b`, `d/./x`): every source key ends copied under its own name or reported by name.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { mirrorKeyOf } from "../../toc/crawl.ts";
import { keyOf } from "../../worker/targets/yas3fs-format.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startLocal } from "../helpers/run.ts";

const ATTR = '{"st_mode":33188,"st_uid":0,"st_gid":0,"st_mtime":1600000000,"st_size":1}';

describe("bucket mirror keys", { timeout: 120_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let runs = 0;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-mirror-keys-"));
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const put = async (bucket: string, keys: readonly string[]) => {
    await aws.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const key of keys) {
      const dir = key.endsWith("/");
      await aws.clients.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: dir ? "" : `body of ${key}`,
          ContentType: dir ? "application/x-directory" : "text/plain",
          Metadata: { attr: ATTR },
        }),
      );
    }
  };
  const list = async (bucket: string, prefix: string) =>
    ((await aws.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? [])
      .map((o) => o.Key ?? "")
      .sort();
  const text = async (bucket: string, key: string) => {
    const out = await aws.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (out.Body as { transformToString(): Promise<string> }).transformToString();
  };
  const mirror = async (source: string, target: string) => {
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: `mk${++runs}`,
      source,
      target,
      args: ["--workers", "1"],
    });
    const { code } = await run.exited;
    return { code, report: await run.report(), stderr: run.stderr() };
  };

  it("names each object by the key the mirror target copies it under (the master's layout is the worker's)", () => {
    for (const prefix of ["", "g", "a/b"]) {
      for (const e of [
        { path: ".", kind: "dir" },
        { path: "x", kind: "file" },
        { path: "x", kind: "dir" },
        { path: "d/./x", kind: "file" },
        { path: "a//b", kind: "file" },
      ] as const) {
        assert.equal(mirrorKeyOf(prefix, e), keyOf(prefix, e.path, e.kind), `${prefix} ${e.path} ${e.kind}`);
      }
    }
  });

  it("copies every key under a prefix as itself, and reports PREFIX/. and PREFIX/./ by name", async () => {
    const keys = [
      "src/",
      "src/a.txt",
      "src/.",
      "src/./",
      "src/d/",
      "src/d/./x",
      "src/x//y",
      "src/..",
      "src/e/.",
    ];
    await put("mk-src", keys);
    const { code, report, stderr } = await mirror("s3://mk-src/src", "s3://mk-dst/m");
    assert.equal(code, 1, `the keys that cannot be copied fail the run\n${stderr.slice(-2000)}`);
    // `e/.` is a file named "." in e, and `..` one named ".." in the prefix: both are copied as themselves.
    const cannot = ["src/.", "src/./"];
    for (const k of cannot) {
      const err = report.errors.find((e) => e.reason.includes(`object key ${JSON.stringify(k)}`));
      assert.ok(err, `${k} reported by name: ${JSON.stringify(report.errors)}`);
      assert.match(err.reason, /cannot be copied as itself: its name would be read and written as "src\/"/);
      assert.equal(err.phase, "crawl");
    }
    assert.equal(report.errors.length, cannot.length, JSON.stringify(report.errors));
    // Every key ends copied or reported.
    assert.equal(report.entries, keys.length);
    assert.deepEqual(report.write, {
      ok: keys.length - cannot.length,
      failed: cannot.length,
      skipped: 0,
      unchanged: 0,
    });
    assert.deepEqual(report.validate, { ok: keys.length - cannot.length, failed: 0 });
    const copied = keys.filter((k) => !cannot.includes(k)).map((k) => `m/${k.slice(4)}`);
    assert.deepEqual(await list("mk-dst", "m/"), copied.sort());
    for (const k of keys.filter((x) => !cannot.includes(x) && !x.endsWith("/"))) {
      assert.equal(await text("mk-dst", `m/${k.slice(4)}`), `body of ${k}`, k);
    }
  });

  it("copies a bucket's root marker . as the root, and reports ./ by name", async () => {
    const keys = [".", "./", "a.txt"];
    await put("mk-root", keys);
    const { code, report, stderr } = await mirror("s3://mk-root", "s3://mk-root-dst/r");
    assert.equal(code, 1, stderr.slice(-2000));
    assert.equal(report.entries, keys.length);
    assert.deepEqual(
      report.errors.map((e) => [e.path, /object key "\.\/" cannot be copied as itself/.test(e.reason)]),
      [["./", true]],
    );
    assert.deepEqual(await list("mk-root-dst", "r/"), ["r/", "r/a.txt"]);
  });
});
