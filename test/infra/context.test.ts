import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { CONTEXT_DEFAULTS, CONTEXT_KEYS, parseLoaderContext } from "../../lib/context.ts";
import { ensureBundle, ROOT } from "./fixture.ts";

const parse = (ctx: Record<string, unknown>) => parseLoaderContext((k) => ctx[k]);

describe("the stack's context", () => {
  it("has a default for every key it documents", () => {
    assert.deepEqual(Object.keys(CONTEXT_DEFAULTS).sort(), Object.keys(CONTEXT_KEYS).sort());
    assert.deepEqual(parse({}), CONTEXT_DEFAULTS);
  });

  it("reads strings from the command line and JSON values from cdk.json alike", () => {
    const fromCli = parse({
      createBucket: "false",
      targetBucket: "my-data",
      workerConcurrency: "32",
      volumeGiB: "200",
    });
    const fromJson = parse({
      createBucket: false,
      targetBucket: "my-data",
      workerConcurrency: 32,
      volumeGiB: 200,
    });
    assert.deepEqual(fromCli, fromJson);
    assert.equal(fromCli.workerConcurrency, 32);
    assert.equal(parse({ targetPrefix: "loads/2024/" }).targetPrefix, "loads/2024");
  });

  for (const [ctx, message] of [
    [{ workerConcurrency: "0" }, /context workerConcurrency: got "0"; expected an integer from 1 to 1024/],
    [
      { instanceType: "big" },
      /context instanceType: got "big"; expected an EC2 instance type such as c6i\.large/,
    ],
    [{ sourceNfs: "/export" }, /context sourceNfs: got "\/export"; expected an NFS export as host:\/path/],
    [{ targetBucket: "My_Bucket" }, /context targetBucket: got "My_Bucket"; expected an S3 bucket name/],
    [{ createBucket: "no" }, /context createBucket: got "no"; expected true or false/],
    [{ createBucket: "false" }, /context createBucket: got false without a targetBucket/],
    [{ sourceMount: "relative" }, /context sourceMount: got "relative"; expected an absolute directory path/],
    [
      { targetMount: "/mnt/source" },
      /context targetMount: got "\/mnt\/source"; expected a path other than sourceMount/,
    ],
    [{ copier: "cp" }, /context copier: got "cp"; expected fs or rsync/],
    [{ vpcId: "default" }, /context vpcId: got "default"; expected a VPC id/],
    [{ yas3fsTopicArn: "topic" }, /context yas3fsTopicArn: got "topic"; expected an SNS topic ARN/],
    [
      { kmsKeyArn: "alias/loads" },
      /context kmsKeyArn: got "alias\/loads"; expected create, or a KMS key ARN/,
    ],
  ] as const) {
    it(`fails on ${JSON.stringify(ctx)}, naming the key and what is allowed`, () => {
      assert.throws(() => parse(ctx), message);
    });
  }

  it("reports every bad key at once", () => {
    assert.throws(() => parse({ volumeGiB: "1", copier: "cp" }), /volumeGiB[\s\S]*copier/);
  });
});

describe("cdk synth", () => {
  it("works offline with no AWS credentials and no context", { timeout: 120_000 }, () => {
    ensureBundle();
    const out = mkdtempSync(path.join(os.tmpdir(), "s3bl-synth-"));
    try {
      const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: out, CDK_OUTDIR: out };
      const r = spawnSync(process.execPath, ["--import", "tsx", "bin/app.ts"], {
        cwd: ROOT,
        env,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      const file = path.join(out, "S3BucketLoader.template.json");
      assert.ok(existsSync(file));
      assert.ok(JSON.parse(readFileSync(file, "utf8")).Resources);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("fails with the context error, naming the key", { timeout: 120_000 }, () => {
    ensureBundle();
    const out = mkdtempSync(path.join(os.tmpdir(), "s3bl-synth-"));
    try {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "",
        HOME: out,
        CDK_OUTDIR: out,
        CDK_CONTEXT_JSON: JSON.stringify({ instanceType: "huge" }),
      };
      const r = spawnSync(process.execPath, ["--import", "tsx", "bin/app.ts"], {
        cwd: ROOT,
        env,
        encoding: "utf8",
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /context instanceType: got "huge"/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
