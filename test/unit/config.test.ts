import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { masterSettings } from "../../master/settings.ts";
import { workerSettings } from "../../worker/settings.ts";

const channels = {
  "topic-arn": "arn:aws:sns:us-east-1:000000000000:t",
  "toc-queue-url": "http://127.0.0.1:1/000000000000/toc",
  "report-queue-url": "http://127.0.0.1:1/000000000000/rep",
};

describe("configuration", () => {
  it("takes a flag over the environment over the default", () => {
    const env = { S3BL_CONCURRENCY: "8", S3BL_SOURCE: "/src", S3BL_TARGET: "/dst" };
    assert.equal(parseConfig(workerSettings, { ...channels }, env).concurrency, 8);
    assert.equal(parseConfig(workerSettings, { ...channels, concurrency: 4 }, env).concurrency, 4);
    assert.equal(
      parseConfig(workerSettings, { ...channels }, { S3BL_SOURCE: "/s", S3BL_TARGET: "/t" }).concurrency,
      64,
    );
  });

  it("names every bad setting, shows the value and says what is allowed", () => {
    let err: unknown;
    try {
      parseConfig(
        workerSettings,
        { ...channels, concurrency: "lots", copier: "scp", "toc-queue-url": "nope" },
        {},
      );
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    assert.match(
      err.message,
      /--concurrency \(or S3BL_CONCURRENCY\): got "lots"; expected an integer from 1 to 1024/,
    );
    assert.match(err.message, /--copier \(or S3BL_COPIER\): got "scp"; expected fs or rsync/);
    assert.match(
      err.message,
      /--toc-queue-url \(or S3BL_TOC_QUEUE_URL\): got "nope"; expected an SQS queue URL/,
    );
    assert.match(err.message, /--source \(or S3BL_SOURCE\): got nothing; expected a directory/);
  });

  it("makes a run id when none is given and refuses one that cannot be a name", () => {
    const c = parseConfig(masterSettings, { ...channels, source: "/s" }, {});
    assert.match(c.runId, /^\d{8}T\d{6}-[0-9a-f]{1,4}$/);
    assert.throws(
      () => parseConfig(masterSettings, { ...channels, source: "/s", "run-id": "a b" }, {}),
      /--run-id/,
    );
  });
});
