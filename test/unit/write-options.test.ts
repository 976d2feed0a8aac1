/** The write options: settings checked together, tags parsed, request headers, and what VALIDATE compares. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { isRetryable } from "../../core/retry.ts";
import { settingArgs } from "../../core/setting.ts";
import {
  parseTag,
  storedAsProblems,
  type WriteOptions,
  type WriteSettings,
  writeHeaders,
  writeOptionsFrom,
} from "../../core/write-options.ts";
import { workerSettings } from "../../worker/settings.ts";
import { writeOptionsOf } from "../../worker/targets/make-target.ts";

const NONE: WriteSettings = {
  allowArchiveClasses: false,
  tag: [],
  tagRunId: false,
  noOverwrite: false,
};
const KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN = `arn:aws:kms:us-east-1:123456789012:key/${KEY_ID}`;

const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("expected a ConfigError");
};

describe("write options from the settings", () => {
  it("asks nothing of S3 when nothing is given", () => {
    assert.deepEqual(writeOptionsFrom(NONE), {
      storageClass: undefined,
      encryption: undefined,
      tags: [],
      noOverwrite: false,
    });
    assert.deepEqual(writeHeaders(writeOptionsFrom(NONE), true), {});
  });

  const refused: [string, Partial<WriteSettings>, RegExp][] = [
    [
      "GLACIER without --allow-archive-classes",
      { storageClass: "GLACIER" },
      /--storage-class GLACIER: yas3fs cannot read .* until it is restored.*--allow-archive-classes/,
    ],
    [
      "DEEP_ARCHIVE without --allow-archive-classes",
      { storageClass: "DEEP_ARCHIVE" },
      /--allow-archive-classes/,
    ],
    ["a KMS key without --sse aws:kms", { sseKmsKeyId: KEY_ID }, /--sse-kms-key-id: .* needs --sse aws:kms/],
    [
      "a KMS key with --sse AES256",
      { sse: "AES256", sseKmsKeyId: KEY_ID },
      /with --sse AES256; a KMS key needs --sse aws:kms/,
    ],
    ["a tag without =", { tag: ["project"] }, /--tag: got "project"; expected KEY=VALUE/],
    ["a tag with a reserved key", { tag: ["aws:x=1"] }, /reserved for AWS/],
    ["a tag with a character S3 refuses", { tag: ["a=b;c"] }, /letters, digits, spaces/],
    ["the same key twice", { tag: ["a=1", "a=2"] }, /the key "a" is given twice/],
    ["eleven tags", { tag: Array.from({ length: 11 }, (_, i) => `k${i}=v`) }, /11 tags; S3 keeps at most 10/],
    ["--tag-run-id without a run id", { tagRunId: true }, /--tag-run-id: .* give --run-id/],
  ];
  for (const [name, given, message] of refused) {
    it(`refuses ${name}, saying why`, () => {
      assert.match(
        refusal(() => writeOptionsFrom({ ...NONE, ...given })),
        message,
      );
    });
  }

  it("takes an archive class when allowed, and tags with the run id", () => {
    const o = writeOptionsFrom(
      { ...NONE, storageClass: "GLACIER", allowArchiveClasses: true, tag: ["team=data ops"], tagRunId: true },
      "run-7",
    );
    assert.equal(o.storageClass, "GLACIER");
    assert.deepEqual(o.tags, [
      { key: "team", value: "data ops" },
      { key: "s3bl:run-id", value: "run-7" },
    ]);
  });

  it("parses a tag whose value holds = and may be empty", () => {
    assert.deepEqual(parseTag("a=b=c"), { key: "a", value: "b=c" });
    assert.deepEqual(parseTag("empty="), { key: "empty", value: "" });
    assert.deepEqual(parseTag("path=/x/y@z:1+2"), { key: "path", value: "/x/y@z:1+2" });
  });
});

describe("the request headers", () => {
  const all: WriteOptions = {
    storageClass: "STANDARD_IA",
    encryption: { algorithm: "aws:kms", kmsKeyId: KEY_ID },
    tags: [
      { key: "team", value: "data ops" },
      { key: "s3bl:run-id", value: "r/1" },
    ],
    noOverwrite: true,
  };

  it("carry class, KMS with bucket keys, URL-encoded tags and If-None-Match on a PUT", () => {
    assert.deepEqual(writeHeaders(all, true), {
      "x-amz-storage-class": "STANDARD_IA",
      "x-amz-server-side-encryption": "aws:kms",
      "x-amz-server-side-encryption-bucket-key-enabled": "true",
      "x-amz-server-side-encryption-aws-kms-key-id": KEY_ID,
      "x-amz-tagging": "team=data%20ops&s3bl%3Arun-id=r%2F1",
      "if-none-match": "*",
    });
  });

  it("leave If-None-Match to the completion of a multipart upload", () => {
    assert.equal(writeHeaders(all, false)["if-none-match"], undefined);
  });

  it("send no bucket key or key id with AES256", () => {
    assert.deepEqual(
      writeHeaders({ tags: [], noOverwrite: false, encryption: { algorithm: "AES256" } }, true),
      {
        "x-amz-server-side-encryption": "AES256",
      },
    );
  });
});

describe("an object stored as asked", () => {
  const asked: WriteOptions = {
    storageClass: "STANDARD_IA",
    encryption: { algorithm: "aws:kms", kmsKeyId: KEY_ID },
    tags: [],
    noOverwrite: false,
  };
  const cases: [string, WriteOptions, Parameters<typeof storedAsProblems>[1], string[]][] = [
    [
      "matches its key by id",
      asked,
      { storageClass: "STANDARD_IA", encryption: "aws:kms", kmsKeyId: KEY_ARN },
      [],
    ],
    [
      "matches its key by ARN",
      { ...asked, encryption: { algorithm: "aws:kms", kmsKeyId: KEY_ARN } },
      { storageClass: "STANDARD_IA", encryption: "aws:kms", kmsKeyId: KEY_ARN },
      [],
    ],
    [
      "is in another class (no header: STANDARD)",
      asked,
      { storageClass: undefined, encryption: "aws:kms", kmsKeyId: KEY_ARN },
      ["storage class STANDARD in the bucket, STANDARD_IA asked"],
    ],
    [
      "is encrypted otherwise",
      asked,
      { storageClass: "STANDARD_IA", encryption: "AES256", kmsKeyId: undefined },
      ["encryption AES256 in the bucket, aws:kms asked"],
    ],
    [
      "is under another key",
      asked,
      { storageClass: "STANDARD_IA", encryption: "aws:kms", kmsKeyId: `${KEY_ARN.slice(0, -2)}ff` },
      [`KMS key ${KEY_ARN.slice(0, -2)}ff in the bucket, ${KEY_ID} asked`],
    ],
    [
      "is anything at all when nothing was asked",
      { tags: [], noOverwrite: false },
      { storageClass: "GLACIER", encryption: undefined, kmsKeyId: undefined },
      [],
    ],
  ];
  for (const [name, o, head, want] of cases) {
    it(`${name}: ${want.length === 0 ? "no problem" : want.join("; ")}`, () => {
      assert.deepEqual(storedAsProblems(o, head), want);
    });
  }
});

describe("the write settings in a worker's table", () => {
  const parse = (flags: Record<string, unknown>) =>
    parseConfig(
      workerSettings,
      {
        source: "/src",
        target: "s3://bucket/p",
        "topic-arn": "arn:aws:sns:us-east-1:123456789012:t",
        "toc-queue-url": "https://sqs.us-east-1.amazonaws.com/123456789012/toc",
        "report-queue-url": "https://sqs.us-east-1.amazonaws.com/123456789012/report",
        ...flags,
      },
      {},
    );

  it("refuse a class a general-purpose bucket does not take, naming where it belongs", () => {
    assert.match(
      refusal(() => parse({ "storage-class": "EXPRESS_ONEZONE" })),
      /--storage-class: got "EXPRESS_ONEZONE"; EXPRESS_ONEZONE is only for directory buckets/,
    );
    assert.match(
      refusal(() => parse({ "storage-class": "COLD" })),
      /expected one of STANDARD, REDUCED_REDUNDANCY/,
    );
  });

  it("refuse a KMS alias, which VALIDATE could not check", () => {
    assert.match(
      refusal(() => parse({ sse: "aws:kms", "sse-kms-key-id": "alias/loads" })),
      /an alias cannot be checked/,
    );
  });

  it("take repeated and comma-separated tags, and hand them on as repeated flags", () => {
    const c = parse({ tag: ["a=1", "b=2,c=3"] });
    assert.deepEqual(c.tag, ["a=1", "b=2", "c=3"]);
    assert.deepEqual(settingArgs(workerSettings, { tag: c.tag, noOverwrite: true }), [
      "--tag",
      "a=1",
      "--tag",
      "b=2",
      "--tag",
      "c=3",
      "--no-overwrite",
    ]);
  });

  it("are refused for a directory target and for a bucket mirror", () => {
    const base = { ...NONE, noOverwrite: true };
    assert.match(
      refusal(() => writeOptionsOf({ ...base, source: "/src", target: "/mnt/s3" })),
      /yas3fs/,
    );
    assert.match(
      refusal(() => writeOptionsOf({ ...base, source: "s3://a/x", target: "s3://b/y" })),
      /a bucket mirror copies its objects as they are/,
    );
    assert.equal(writeOptionsOf({ ...base, source: "/src", target: "s3://b/y" }).noOverwrite, true);
  });
});

describe("conditional writes and the retry policy", () => {
  const s3Error = (name: string, status: number) =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  it("retries S3's 409 to two conditional writes at once, and never its 412 (something is there)", () => {
    assert.equal(isRetryable(s3Error("ConditionalRequestConflict", 409)), true);
    assert.equal(isRetryable(s3Error("PreconditionFailed", 412)), false);
  });
});
