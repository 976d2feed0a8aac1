/** A program's arguments generated from its settings table: what the local run hands each worker. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../core/config.ts";
import { settingArgs } from "../../core/setting.ts";
import { workerSettings } from "../../worker/settings.ts";

describe("setting arguments from a table", () => {
  it("gives each value as its flag, a true boolean bare, and leaves out false, empty and undefined", () => {
    const args = settingArgs(workerSettings, {
      source: "/src",
      concurrency: 8,
      exitWithParent: true,
      targetEmpty: false,
      yas3fsTopicArn: "",
      beforeValidateCmd: undefined,
    });
    assert.deepEqual(args, ["--source", "/src", "--concurrency", "8", "--exit-with-parent"]);
  });

  it("round-trips through the program's own parse", () => {
    const given = {
      source: "/src",
      target: "s3://bucket/prefix",
      runId: "run-1",
      workerId: "local-1",
      concurrency: 12,
      copier: "rsync",
      validate: "size",
      multipartThresholdMb: 16,
      exitWithParent: true,
      targetEmpty: true,
    } as const;
    const args = settingArgs(workerSettings, given);
    const flags: Record<string, unknown> = {};
    for (let i = 0; i < args.length; i++) {
      const flag = (args[i] ?? "").slice(2);
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) flags[flag] = true;
      else {
        flags[flag] = next;
        i++;
      }
    }
    const channels = {
      "topic-arn": "arn:aws:sns:us-east-1:000000000000:t",
      "toc-queue-url": "http://127.0.0.1:1/000000000000/toc",
      "report-queue-url": "http://127.0.0.1:1/000000000000/rep",
    };
    const parsed = parseConfig(workerSettings, { ...channels, ...flags }, {});
    for (const [key, value] of Object.entries(given))
      assert.equal(parsed[key as keyof typeof parsed], value, key);
  });

  it("fails on a name that is not one of the program's settings", () => {
    assert.throws(() => settingArgs(workerSettings, { workers: 3 } as never), /workers is not a setting/);
  });
});
