/**
 * One snapshot of the whole template, made stable across builds by replacing asset hashes (the worker bundle
 * changes with every code change). Update it on purpose with `UPDATE_SNAPSHOT=1 npm test -- test/infra`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { Template } from "aws-cdk-lib/assertions";
import { loaderStack, ROOT } from "./fixture.ts";

const SNAPSHOT = `${ROOT}test/infra/__snapshots__/loader-stack.json`;

/** Asset hashes (64 hex digits), wherever they appear: S3 keys, user data, metadata. */
export function normalizeTemplate(template: unknown): unknown {
  return JSON.parse(JSON.stringify(template).replace(/[0-9a-f]{64}/g, "ASSET_HASH"));
}

describe("the template snapshot", () => {
  it("is unchanged (asset hashes normalised)", () => {
    const actual = normalizeTemplate(Template.fromStack(loaderStack()).toJSON());
    if (process.env.UPDATE_SNAPSHOT === "1") {
      mkdirSync(`${ROOT}test/infra/__snapshots__`, { recursive: true });
      writeFileSync(SNAPSHOT, `${JSON.stringify(actual, null, 2)}\n`);
    }
    assert.ok(existsSync(SNAPSHOT), `no snapshot at ${SNAPSHOT}: run with UPDATE_SNAPSHOT=1 once`);
    assert.deepEqual(actual, JSON.parse(readFileSync(SNAPSHOT, "utf8")));
  });

  it("does not depend on the bundle's content", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "s3bl-bundle-"));
    try {
      const other = path.join(dir, "worker.cjs");
      writeFileSync(other, "console.log('another build');\n");
      const a = normalizeTemplate(Template.fromStack(loaderStack()).toJSON());
      const b = normalizeTemplate(Template.fromStack(loaderStack({}, { workerBundlePath: other })).toJSON());
      assert.deepEqual(b, a);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
