/**
 * `status --from s3://…`: the status a master on the stack's master host publishes to the logs bucket, read
 * from anywhere. The status file here is one a real local run wrote.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startCli, startLocal } from "../helpers/run.ts";

describe("status from S3", { timeout: 120_000 }, () => {
  let aws: TestAws;
  let tmp: string;

  before(async () => {
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-status-"));
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("shows a run's published status, and says what is missing when there is none", async () => {
    const src = path.join(tmp, "src");
    await fs.mkdir(src);
    for (let i = 0; i < 20; i++) await fs.writeFile(path.join(src, `f${i}`), `file ${i}\n`);
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: "stat",
      source: src,
      target: path.join(tmp, "dst"),
      args: ["--workers", "1", "--run-id", "published-run"],
    });
    assert.equal((await run.exited).code, 0, run.stderr().slice(-2000));
    const local = await fs.readFile(path.join(tmp, "state-stat/runs/published-run/status.json"), "utf8");

    await aws.clients.s3.send(new CreateBucketCommand({ Bucket: "logs" }));
    await aws.clients.s3.send(
      new PutObjectCommand({ Bucket: "logs", Key: "runs/published-run/status.json", Body: local }),
    );
    const env = { AWS_ENDPOINT_URL: aws.emulator.url };
    const json = startCli(["status", "--from", "s3://logs", "--run-id", "published-run", "--json"], { env });
    let out = "";
    json.child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    assert.equal((await json.exited).code, 0, json.stderr());
    assert.deepEqual(JSON.parse(out), JSON.parse(local));

    const text = startCli(["status", "--from", "s3://logs", "--run-id", "published-run"], { env });
    let shown = "";
    text.child.stdout?.on("data", (d: Buffer) => {
      shown += d.toString();
    });
    assert.equal((await text.exited).code, 0);
    assert.match(shown, /published-run/);

    const missing = startCli(["status", "--from", "s3://logs", "--run-id", "no-such-run"], { env });
    assert.equal((await missing.exited).code, 2);
    assert.match(missing.stderr(), /no status of that run in s3:\/\/logs/);
    const noId = startCli(["status", "--from", "s3://logs"], { env });
    assert.equal((await noId.exited).code, 2);
    assert.match(noId.stderr(), /--run-id: got nothing/);
  });
});
