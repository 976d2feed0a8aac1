import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { parseConfig } from "../../core/config.ts";
import { checkFileNames, parseConfigFile } from "../../core/config-file.ts";
import { ConfigError } from "../../core/errors.ts";
import { masterSettings } from "../../master/settings.ts";
import { workerSettings } from "../../worker/settings.ts";

const channels = {
  "topic-arn": "arn:aws:sns:us-east-1:000000000000:t",
  "toc-queue-url": "http://127.0.0.1:1/000000000000/toc",
  "report-queue-url": "http://127.0.0.1:1/000000000000/rep",
};
const yaml = (text: string) => parseConfigFile(text, "load.yaml");

describe("the configuration file", () => {
  it("sits between the environment and the defaults: flag, then variable, then file, then default", () => {
    const file = yaml("concurrency: 12\ncopier: rsync\nsource: /from-file\ntarget: /t\n");
    const env = { S3BL_CONCURRENCY: "8" };
    assert.equal(parseConfig(workerSettings, { ...channels, concurrency: 4 }, env, file).concurrency, 4);
    assert.equal(parseConfig(workerSettings, { ...channels }, env, file).concurrency, 8);
    const fromFile = parseConfig(workerSettings, { ...channels }, {}, file);
    assert.equal(fromFile.concurrency, 12);
    assert.equal(fromFile.copier, "rsync");
    assert.equal(fromFile.source, "/from-file");
    assert.equal(
      parseConfig(workerSettings, { ...channels, source: "/s", target: "/t" }, {}).concurrency,
      64,
    );
  });

  it("takes a setting under its name or its flag, and JSON as well as YAML", () => {
    const file = parseConfigFile(
      JSON.stringify({ "topic-arn": channels["topic-arn"], tocQueueUrl: channels["toc-queue-url"] }),
      "load.json",
    );
    const c = parseConfig(
      masterSettings,
      { "report-queue-url": channels["report-queue-url"], source: "/s" },
      {},
      file,
    );
    assert.equal(c.topicArn, channels["topic-arn"]);
    assert.equal(c.tocQueueUrl, channels["toc-queue-url"]);
  });

  it("reads the file --config names, and says which file a bad value came from", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-config-"));
    const file = path.join(dir, "load.yaml");
    await fs.writeFile(file, "concurrency: lots\ncopier: scp\n");
    try {
      assert.throws(
        () => parseConfig(workerSettings, { ...channels, config: file, source: "/s", target: "/t" }, {}),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.includes(
            `concurrency in ${file} (--concurrency (or S3BL_CONCURRENCY)): got "lots"; expected an integer from 1 to 1024`,
          ) &&
          err.message.includes(
            `copier in ${file} (--copier (or S3BL_COPIER)): got "scp"; expected fs or rsync`,
          ),
      );
      // A flag over a bad file value: the flag wins, nothing to complain about.
      const c = parseConfig(
        workerSettings,
        { ...channels, config: file, source: "/s", target: "/t", concurrency: 3, copier: "fs" },
        {},
      );
      assert.equal(c.concurrency, 3);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("fails on a file that cannot be read, is not YAML, or is not a mapping", () => {
    assert.throws(
      () => parseConfig(workerSettings, { config: "/no/such/file.yaml" }, {}),
      /--config: got "\/no\/such\/file.yaml"; cannot read it \(ENOENT\)/,
    );
    assert.throws(() => parseConfigFile("a: [1,\n", "bad.yaml"), /--config bad.yaml: not valid YAML or JSON/);
    assert.throws(
      () => parseConfigFile("- 1\n- 2\n", "list.yaml"),
      /--config list.yaml: got \[1,2\]; expected a mapping/,
    );
  });

  it("names a setting no program has, with the closest one", () => {
    assert.throws(
      () => checkFileNames(yaml("concurency: 4\nworkers: 2\n"), [workerSettings, masterSettings]),
      (err: unknown) =>
        err instanceof ConfigError &&
        /concurency in load.yaml: got 4; no program has this setting \(did you mean concurrency\?\)/.test(
          err.message,
        ),
    );
    // One file serves every program: a master setting in it does not bother the worker.
    checkFileNames(yaml("concurrency: 4\nworkers: 2\n"), [workerSettings, masterSettings]);
  });
});
