/**
 * The worker fleet against a stand-in of the EC2 Query API on 127.0.0.1, driven by the real
 * `@aws-sdk/client-ec2`: first the adapter alone, then whole runs of the master CLI with `--launch`, where
 * each fake instance starts a real worker process (and one never does), and a run interrupted with Ctrl-C.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { Ec2Fleet, makeEc2Client } from "../../core/aws/ec2-fleet.ts";
import { ensureRunResources, type RunResources } from "../../core/aws/resources.ts";
import { FLEET_TAGS } from "../../core/deployment.ts";
import { makeSampleTree } from "../../local/sample-tree.ts";
import { fillFlags, outputsFromFile, withDeployment } from "../../master/fleet-deployment.ts";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startFakeCloudFormation } from "../helpers/fake-cloudformation.ts";
import { type FakeEc2, type FakeInstance, startFakeEc2 } from "../helpers/fake-ec2.ts";
import { type Proc, startCli } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

const LT = "lt-0123456789abcdef0";
const tags = { [FLEET_TAGS.fleet]: "S3BucketLoader", [FLEET_TAGS.runId]: "r1" };

describe("the EC2 fleet adapter", () => {
  let ec2: FakeEc2;
  const client = () => makeEc2Client({ region: "us-east-1", endpoint: ec2.url });

  before(async () => {
    ec2 = await startFakeEc2();
  });
  after(() => ec2.close());
  beforeEach(() => {
    ec2.instances.clear();
    ec2.calls.length = 0;
    ec2.noCapacityIn.clear();
  });

  it("launches from the launch template with the run's tags, into the first subnet with capacity", async () => {
    ec2.noCapacityIn.add("subnet-0aaaaaaaa");
    const fleet = new Ec2Fleet(client(), {
      launchTemplateId: LT,
      subnetIds: ["subnet-0aaaaaaaa", "subnet-0bbbbbbbb"],
      spot: false,
    });
    const launched = await fleet.launch(3, tags);
    assert.equal(launched.length, 3);
    const runs = ec2.calls.filter((c) => c.action === "RunInstances");
    assert.deepEqual(
      runs.map((c) => c.params.get("SubnetId")),
      ["subnet-0aaaaaaaa", "subnet-0bbbbbbbb"],
    );
    const last = runs[1]?.params;
    assert.equal(last?.get("LaunchTemplate.LaunchTemplateId"), LT);
    assert.equal(last?.get("MinCount"), "1");
    assert.equal(last?.get("MaxCount"), "3");
    assert.equal(last?.get("InstanceMarketOptions.MarketType"), null, "On-Demand");
    for (const i of ec2.instances.values()) {
      assert.equal(i.tags.get(FLEET_TAGS.runId), "r1");
      assert.equal(i.tags.get(FLEET_TAGS.fleet), "S3BucketLoader");
      assert.equal(i.subnetId, "subnet-0bbbbbbbb");
    }
  });

  it("launches Spot instances when asked", async () => {
    const fleet = new Ec2Fleet(client(), { launchTemplateId: LT, subnetIds: [], spot: true });
    await fleet.launch(2, tags);
    const params = ec2.calls.find((c) => c.action === "RunInstances")?.params;
    assert.equal(params?.get("InstanceMarketOptions.MarketType"), "spot");
    assert.equal(params?.get("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"), "terminate");
    assert.ok([...ec2.instances.values()].every((i) => i.spot));
  });

  it("fails with EC2's error code when no subnet has capacity, or the launch is refused", async () => {
    ec2.noCapacityIn.add("subnet-0aaaaaaaa");
    const fleet = new Ec2Fleet(client(), {
      launchTemplateId: LT,
      subnetIds: ["subnet-0aaaaaaaa"],
      spot: false,
    });
    await assert.rejects(fleet.launch(1, tags), (err: Error) => {
      assert.match(
        err.message,
        /RunInstances on launch template lt-\w+ in every subnet failed: .*sufficient capacity/,
      );
      assert.equal((err.cause as Error).name, "InsufficientInstanceCapacity");
      return true;
    });
    ec2.failNext(
      "RunInstances",
      "UnauthorizedOperation",
      "You are not authorized to perform this operation.",
    );
    const other = new Ec2Fleet(client(), { launchTemplateId: LT, subnetIds: [], spot: false });
    await assert.rejects(
      other.launch(1, tags),
      (err: Error) => (err.cause as Error).name === "UnauthorizedOperation",
    );
    assert.equal(ec2.instances.size, 0);
  });

  it("finds the run's instances by tag, and not other runs' nor terminated ones", async () => {
    const fleet = new Ec2Fleet(client(), { launchTemplateId: LT, subnetIds: [], spot: false });
    const mine = await fleet.launch(2, tags);
    await fleet.launch(1, { ...tags, [FLEET_TAGS.runId]: "r2" });
    await fleet.terminate([mine[0]?.id ?? ""]);
    await fleet.describe(tags); // shutting-down → terminated
    const found = await fleet.describe(tags);
    assert.deepEqual(
      found.map((i) => i.id),
      [mine[1]?.id],
    );
    assert.equal(found[0]?.state, "running");
    assert.match(found[0]?.privateDnsName ?? "", /^ip-.*\.ec2\.internal$/);
  });

  it("terminates instances, and one already gone is not an error", async () => {
    const fleet = new Ec2Fleet(client(), { launchTemplateId: LT, subnetIds: [], spot: false });
    const [a, b] = await fleet.launch(2, tags);
    await fleet.terminate([a?.id ?? "", "i-0000000000000dead", b?.id ?? ""]);
    assert.deepEqual(
      [...ec2.instances.values()].map((i) => i.state),
      ["shutting-down", "shutting-down"],
    );
  });

  it("retries a throttled describe", async () => {
    const fleet = new Ec2Fleet(client(), { launchTemplateId: LT, subnetIds: [], spot: false });
    await fleet.launch(1, tags);
    ec2.failNext("DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.");
    assert.equal((await fleet.describe(tags)).length, 1);
  });
});

describe("a stack's outputs as the master's settings", () => {
  const outputs = {
    ControlTopicArn: "arn:aws:sns:eu-west-1:123456789012:t",
    TocQueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/toc",
    ReportQueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/report",
    DeadLetterQueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    Region: "eu-west-1",
    WorkerLaunchTemplateId: LT,
    WorkerSubnetIds: "subnet-0aaaaaaaa,subnet-0bbbbbbbb",
    FleetName: "S3BucketLoader",
    MasterPolicyArn: "arn:aws:iam::123456789012:policy/x",
  };

  it("fills every flag not given, and keeps those given", () => {
    const flags = fillFlags({ region: "us-west-2", workers: 4 }, outputs, "S3BucketLoader");
    assert.equal(flags["topic-arn"], outputs.ControlTopicArn);
    assert.equal(flags["toc-queue-url"], outputs.TocQueueUrl);
    assert.equal(flags["report-queue-url"], outputs.ReportQueueUrl);
    assert.equal(flags["dead-letter-queue-url"], outputs.DeadLetterQueueUrl);
    assert.equal(flags["launch-template-id"], LT);
    assert.equal(flags["subnet-ids"], outputs.WorkerSubnetIds);
    assert.equal(flags["fleet-name"], "S3BucketLoader");
    assert.equal(flags.region, "us-west-2", "a flag wins over the stack");
    assert.equal(flags.workers, 4);
  });

  it("reads the file cdk deploy --outputs-file writes: the only stack, or the named one", () => {
    const one = JSON.stringify({ S3BucketLoader: outputs });
    assert.deepEqual(outputsFromFile(one, "o.json"), outputs);
    const two = JSON.stringify({ A: outputs, B: { ...outputs, Region: "us-east-2" } });
    assert.equal(outputsFromFile(two, "o.json", "B").Region, "us-east-2");
    assert.throws(() => outputsFromFile(two, "o.json"), /has the stacks A, B; name one with --stack/);
    assert.throws(() => outputsFromFile("{", "o.json"), /o\.json is not JSON/);
  });

  it("reads them through CloudFormation DescribeStacks with --stack, and names a stack that does not exist", async () => {
    const cfn = await startFakeCloudFormation();
    try {
      cfn.stacks.set("S3BucketLoader", outputs);
      const env = { AWS_ENDPOINT_URL_CLOUDFORMATION: cfn.url };
      const flags = await withDeployment({ stack: "S3BucketLoader", workers: 2 }, env);
      assert.equal(flags["topic-arn"], outputs.ControlTopicArn);
      assert.equal(flags["launch-template-id"], LT);
      assert.equal(flags.region, "eu-west-1");
      await assert.rejects(withDeployment({ stack: "Nope" }, env), /--stack: got "Nope"; no such stack/);
    } finally {
      await cfn.close();
    }
  });

  it("fails on outputs that are not a load stack's", () => {
    assert.throws(
      () => fillFlags({}, { BucketName: "x" }, "Other"),
      /Other: the outputs lack ControlTopicArn, TocQueueUrl, ReportQueueUrl/,
    );
  });
});

describe("master --launch against the fake EC2", { timeout: 240_000 }, () => {
  let aws: TestAws;
  let ec2: FakeEc2;
  let tmp: string;
  let source: string;
  const workers = new Map<string, Proc>();

  before(async () => {
    aws = await startTestAws();
    ec2 = await startFakeEc2();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-fleet-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 300, largeFiles: 0, seed: 7 });
  });

  after(async () => {
    for (const w of workers.values()) w.child.kill("SIGKILL");
    await ec2?.close();
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  /** Each fake instance boots a worker named after it (as the boot script does), except the `silent` ones. */
  const bootWorkers = (r: RunResources, target: string, silent: number, args: readonly string[] = []) => {
    let launched = 0;
    ec2.onLaunch = (i: FakeInstance) => {
      if (launched++ < silent) return;
      const w = startCli(
        [
          "worker",
          "--source",
          source,
          "--target",
          target,
          "--concurrency",
          "4",
          "--report-ms",
          "200",
          "--heartbeat-ms",
          "500",
          ...args,
        ],
        {
          env: {
            AWS_ENDPOINT_URL: aws.emulator.url,
            S3BL_TOPIC_ARN: r.topicArn,
            S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
            S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
            S3BL_WORKER_ID: i.id,
            S3BL_RUN_ID: i.tags.get(FLEET_TAGS.runId) ?? "",
          },
        },
      );
      workers.set(i.id, w);
      // A worker that ends its run powers its instance off (the launch template makes that a termination).
      w.exited.then(({ code }) => {
        if (code === 0 && i.state === "running") i.state = "shutting-down";
      });
    };
    ec2.onTerminate = (i: FakeInstance) => workers.get(i.id)?.child.kill("SIGTERM");
  };

  const outputsFile = async (name: string, r: RunResources) => {
    const file = path.join(tmp, `${name}-outputs.json`);
    await fs.writeFile(
      file,
      JSON.stringify({
        S3BucketLoader: {
          Region: "us-east-1",
          ControlTopicArn: r.topicArn,
          TocQueueUrl: r.tocQueueUrl,
          ReportQueueUrl: r.reportQueueUrl,
          DeadLetterQueueUrl: r.deadLetterQueueUrl,
          WorkerLaunchTemplateId: LT,
          WorkerSubnetIds: "subnet-0aaaaaaaa,subnet-0bbbbbbbb",
          FleetName: "S3BucketLoader",
        },
      }),
    );
    return file;
  };

  const master = (name: string, file: string, extra: string[]) =>
    startCli(
      [
        "master",
        "--outputs-file",
        file,
        "--launch",
        "--source",
        source,
        "--run-id",
        `${name}-${process.pid}`,
        "--ec2-endpoint-url",
        ec2.url,
        "--endpoint-url",
        aws.emulator.url,
        "--fleet-poll-sec",
        "1",
        "--beacon-ms",
        "500",
        "--progress-ms",
        "200",
        "--worker-timeout-sec",
        "5",
        "--state-dir",
        path.join(tmp, "state"),
        ...extra,
      ],
      {},
    );

  it("runs with the instances that report, terminates the one that never does, and ends the fleet", async () => {
    ec2.instances.clear();
    const r = await ensureRunResources(aws.clients, "fleetok", {
      tocVisibilityTimeoutSec: 10,
      maxReceiveCount: 5,
    });
    const target = path.join(tmp, "dst-ok");
    bootWorkers(r, target, 1);
    const reportFile = path.join(tmp, "ok.json");
    const m = master("ok", await outputsFile("ok", r), [
      "--workers",
      "3",
      "--init-timeout-sec",
      "8",
      "--fleet-drain-sec",
      "5",
      "--report",
      reportFile,
    ]);
    const { code } = await m.exited;
    assert.equal(code, 0, m.stderr().slice(-4000));

    const report: RunReport = JSON.parse(await fs.readFile(reportFile, "utf8"));
    assert.equal(report.outcome, "succeeded");
    const entries = (await listTree(source)).length + 1;
    assert.equal(report.validate.ok, entries);
    assert.deepEqual(await diffTrees(source, target, { owner: false }), []);

    const all = [...ec2.instances.values()];
    assert.equal(all.length, 3);
    const [silentOne] = all;
    assert.ok(silentOne && !workers.has(silentOne.id));
    assert.ok(
      report.notes.some((n) => n.includes(silentOne.id) && /did not announce a worker within 8 s/.test(n)),
      report.notes.join("\n"),
    );
    assert.deepEqual(
      report.workers.map((w) => w.id).sort(),
      all
        .slice(1)
        .map((i) => i.id)
        .sort(),
      "the workers are named after their instances",
    );
    assert.ok(
      all.every((i) => i.state === "shutting-down" || i.state === "terminated"),
      "no instance left running",
    );
    const terminated = ec2.calls.filter((c) => c.action === "TerminateInstances");
    assert.ok(
      terminated.some((c) => c.params.get("InstanceId.1") === silentOne.id && !c.params.has("InstanceId.2")),
      "the silent one was terminated on its own, at its deadline",
    );
    assert.ok(all.every((i) => i.tags.get(FLEET_TAGS.runId) === `ok-${process.pid}`));
  });

  it("Ctrl-C mid-run stops the run with a partial report, exit 130, and terminates every instance", async () => {
    ec2.instances.clear();
    ec2.calls.length = 0;
    const r = await ensureRunResources(aws.clients, "fleetintr", {
      tocVisibilityTimeoutSec: 10,
      maxReceiveCount: 5,
    });
    const target = path.join(tmp, "dst-intr");
    // WRITE may end before a progress line shows it: VALIDATE waits a few seconds on the workers' hook, so
    // that the run is still going when Ctrl-C comes.
    bootWorkers(r, target, 0, ["--before-validate-cmd", "sleep 3"]);
    const reportFile = path.join(tmp, "intr.json");
    const m = master("intr", await outputsFile("intr", r), [
      "--workers",
      "2",
      "--init-timeout-sec",
      "30",
      "--batch-entries",
      "5",
      "--report",
      reportFile,
    ]);
    await m.waitFor(
      (l) =>
        l.event === "progress" &&
        ((l.phase === "WRITE" && Number(l.written) >= 20) || l.phase === "VALIDATE"),
    );
    m.child.kill("SIGINT");
    const { code } = await m.exited;
    assert.equal(code, 130, m.stderr().slice(-4000));
    const report: RunReport = JSON.parse(await fs.readFile(reportFile, "utf8"));
    assert.equal(report.outcome, "interrupted");
    const all = [...ec2.instances.values()];
    assert.equal(all.length, 2);
    assert.ok(
      all.every((i) => i.state === "shutting-down" || i.state === "terminated"),
      "every instance ended",
    );
    assert.ok(ec2.calls.some((c) => c.action === "TerminateInstances"));
    for (const w of workers.values()) await w.exited;
  });
});
