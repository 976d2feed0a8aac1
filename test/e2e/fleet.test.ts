/**
 * The worker fleet's EC2 adapter and the stack's outputs, driven by the real SDK clients against moto on
 * 127.0.0.1 (EC2, CloudFormation). Errors moto cannot produce (no capacity, a refused launch, throttling) come
 * from a pass-through proxy in front of it. Whole runs of `master --launch` on a deployed stack are in
 * test/deploy/.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import os from "node:os";
import { after, before, beforeEach, describe, it } from "node:test";
import { CloudFormationClient, CreateStackCommand } from "@aws-sdk/client-cloudformation";
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  type Instance,
} from "@aws-sdk/client-ec2";
import { Ec2Fleet, makeEc2Client } from "../../core/aws/ec2-fleet.ts";
import { FLEET_TAGS } from "../../core/deployment.ts";
import { fillFlags, outputsFromFile, withDeployment } from "../../master/fleet-deployment.ts";
import { type Ec2Faults, startEc2Faults } from "../helpers/ec2-faults.ts";
import { MOTO_KEYS, MOTO_REGION, type Moto, startMoto } from "../helpers/moto.ts";
import { CLI, testEnv } from "../helpers/run.ts";

const LT = "lt-0123456789abcdef0";

let moto: Moto;
before(async () => {
  moto = await startMoto();
});
after(() => moto?.stop());

describe("the EC2 fleet adapter", () => {
  let faults: Ec2Faults;
  let direct: EC2Client;
  let launchTemplateId = "";
  let subnets: string[] = [];
  let run = 0;
  let tags: Record<string, string> = {};
  const client = () => makeEc2Client({ region: MOTO_REGION, endpoint: faults.url });
  const fleet = (o: { subnetIds?: string[]; spot?: boolean; spotFallback?: boolean } = {}) =>
    new Ec2Fleet(client(), {
      launchTemplateId,
      subnetIds: o.subnetIds ?? [],
      spot: o.spot ?? false,
      spotFallback: o.spotFallback ?? false,
    });
  /** The instances moto holds with these tags, whatever their state. */
  const instances = async (t = tags): Promise<Instance[]> => {
    const out = await direct.send(
      new DescribeInstancesCommand({
        Filters: Object.entries(t).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
      }),
    );
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  };

  before(async () => {
    faults = await startEc2Faults(`http://127.0.0.1:${moto.port}`);
    direct = new EC2Client({ region: MOTO_REGION, endpoint: moto.url, credentials: MOTO_KEYS });
    const image = (await direct.send(new DescribeImagesCommand({}))).Images?.[0]?.ImageId;
    const lt = await direct.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "workers",
        LaunchTemplateData: { ImageId: image, InstanceType: "c6i.large" },
      }),
    );
    launchTemplateId = lt.LaunchTemplate?.LaunchTemplateId ?? "";
    const described = await direct.send(
      new DescribeSubnetsCommand({ Filters: [{ Name: "default-for-az", Values: ["true"] }] }),
    );
    subnets = (described.Subnets ?? []).map((x) => x.SubnetId ?? "").slice(0, 2);
    assert.equal(subnets.length, 2);
  });
  after(async () => {
    direct?.destroy();
    await faults?.close();
  });
  beforeEach(() => {
    run++;
    tags = { [FLEET_TAGS.fleet]: "S3BucketLoader", [FLEET_TAGS.runId]: `r${run}` };
    faults.calls.length = 0;
    faults.noCapacityIn.clear();
    faults.noSpotCapacityIn.clear();
  });

  it("launches from the launch template with the run's tags, into the first subnet with capacity", async () => {
    faults.noCapacityIn.add(subnets[0] as string);
    const launched = await fleet({ subnetIds: subnets }).launch(3, tags);
    assert.equal(launched.length, 3);
    const runs = faults.calls.filter((c) => c.action === "RunInstances");
    assert.deepEqual(
      runs.map((c) => c.params.get("SubnetId")),
      subnets,
    );
    const last = runs[1]?.params;
    assert.equal(last?.get("MinCount"), "1");
    assert.equal(last?.get("MaxCount"), "3");
    assert.equal(last?.get("InstanceMarketOptions.MarketType"), null, "On-Demand");
    const all = await instances();
    assert.deepEqual(all.map((i) => i.InstanceId).sort(), launched.map((i) => i.id).sort());
    for (const i of all) {
      const t = Object.fromEntries((i.Tags ?? []).map((x) => [x.Key, x.Value]));
      assert.equal(t[FLEET_TAGS.runId], tags[FLEET_TAGS.runId]);
      assert.equal(t[FLEET_TAGS.fleet], "S3BucketLoader");
      assert.equal(t["aws:ec2launchtemplate:id"], launchTemplateId, "launched from the template");
      assert.equal(i.SubnetId, subnets[1]);
      assert.equal(i.InstanceLifecycle, undefined);
    }
  });

  it("launches Spot instances when asked", async () => {
    await fleet({ spot: true }).launch(2, tags);
    const params = faults.calls.find((c) => c.action === "RunInstances")?.params;
    assert.equal(params?.get("InstanceMarketOptions.MarketType"), "spot");
    assert.equal(params?.get("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"), "terminate");
    const all = await instances();
    assert.equal(all.length, 2);
    assert.ok(all.every((i) => i.InstanceLifecycle === "spot"));
  });

  it("falls back from Spot to On-Demand with --spot-fallback once no subnet has Spot capacity", async () => {
    for (const s of subnets) faults.noSpotCapacityIn.add(s);
    const got = await fleet({ subnetIds: subnets, spot: true, spotFallback: true }).launch(2, tags);
    const runs = faults.calls.filter((c) => c.action === "RunInstances");
    assert.deepEqual(
      runs.map((c) => [c.params.get("InstanceMarketOptions.MarketType"), c.params.get("SubnetId")]),
      [
        ["spot", subnets[0]],
        ["spot", subnets[1]],
        [null, subnets[0]],
      ],
    );
    assert.deepEqual(
      got.map((i) => i.market),
      ["on-demand", "on-demand"],
    );
    const all = await instances();
    assert.equal(all.length, 2);
    assert.ok(all.every((i) => i.InstanceLifecycle === undefined && i.SubnetId === subnets[0]));
  });

  it("without --spot-fallback, no Spot capacity anywhere fails the launch and names every attempt", async () => {
    for (const s of subnets) faults.noSpotCapacityIn.add(s);
    await assert.rejects(fleet({ subnetIds: subnets, spot: true }).launch(1, tags), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(
          `spot in ${subnets[0]}: InsufficientInstanceCapacity; spot in ${subnets[1]}: InsufficientInstanceCapacity`,
        ),
      );
      return true;
    });
    assert.equal((await instances()).length, 0);
  });

  it("fails with EC2's error code when no subnet has capacity, or the launch is refused", async () => {
    faults.noCapacityIn.add(subnets[0] as string);
    await assert.rejects(fleet({ subnetIds: [subnets[0] as string] }).launch(1, tags), (err: Error) => {
      assert.match(
        err.message,
        /RunInstances on launch template lt-\w+ in every subnet \(on-demand in subnet-\w+: InsufficientInstanceCapacity\) failed: .*sufficient capacity/,
      );
      assert.equal((err.cause as Error).name, "InsufficientInstanceCapacity");
      return true;
    });
    faults.failNext(
      "RunInstances",
      "UnauthorizedOperation",
      "You are not authorized to perform this operation.",
    );
    await assert.rejects(
      fleet().launch(1, tags),
      (err: Error) => (err.cause as Error).name === "UnauthorizedOperation",
    );
    assert.equal((await instances()).length, 0);
  });

  it("refuses a launch template that does not exist, with EC2's own error", async () => {
    const other = new Ec2Fleet(client(), { launchTemplateId: LT, subnetIds: [], spot: false });
    await assert.rejects(other.launch(1, tags), (err: Error) => {
      assert.match(err.message, new RegExp(`RunInstances on launch template ${LT} failed`));
      return true;
    });
    assert.equal((await instances()).length, 0);
  });

  it("finds the run's instances by tag, and not other runs' nor terminated ones", async () => {
    const f = fleet();
    const mine = await f.launch(2, tags);
    await f.launch(1, { ...tags, [FLEET_TAGS.runId]: `${tags[FLEET_TAGS.runId]}-other` });
    await f.terminate([mine[0]?.id ?? ""]);
    const found = await f.describe(tags);
    assert.deepEqual(
      found.map((i) => i.id),
      [mine[1]?.id],
    );
    assert.equal(found[0]?.state, "running");
    assert.match(found[0]?.privateDnsName ?? "", /^ip-.*\.ec2\.internal$/);
  });

  it("terminates instances, and one already gone is not an error", async () => {
    const f = fleet();
    const [a, b] = await f.launch(2, tags);
    await f.terminate([a?.id ?? "", "i-0000000000000dead", b?.id ?? ""]);
    assert.deepEqual(
      (await instances()).map((i) => i.State?.Name),
      ["terminated", "terminated"],
    );
    const terminations = faults.calls.filter((c) => c.action === "TerminateInstances");
    assert.ok(terminations.length >= 2, "the whole call failed on the gone one; then one by one");
  });

  it("retries a throttled describe", async () => {
    const f = fleet();
    await f.launch(1, tags);
    faults.failNext("DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.");
    assert.equal((await f.describe(tags)).length, 1);
    assert.equal(faults.calls.filter((c) => c.action === "DescribeInstances").length, 2);
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
    const cfn = new CloudFormationClient({ region: MOTO_REGION, endpoint: moto.url, credentials: MOTO_KEYS });
    try {
      // A stack whose outputs are the load stack's names with these values.
      const template = {
        Resources: { Topic: { Type: "AWS::SNS::Topic" } },
        Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
      };
      await cfn.send(
        new CreateStackCommand({ StackName: "S3BucketLoader", TemplateBody: JSON.stringify(template) }),
      );
      const env = { AWS_ENDPOINT_URL_CLOUDFORMATION: moto.url };
      const flags = await withDeployment({ stack: "S3BucketLoader", workers: 2 }, env);
      assert.equal(flags["topic-arn"], outputs.ControlTopicArn);
      assert.equal(flags["launch-template-id"], LT);
      assert.equal(flags.region, "eu-west-1");
      await assert.rejects(withDeployment({ stack: "Nope" }, env), /--stack: got "Nope"; no such stack/);
    } finally {
      cfn.destroy();
    }
  });

  it("fails on outputs that are not a load stack's", () => {
    assert.throws(
      () => fillFlags({}, { BucketName: "x" }, "Other"),
      /Other: the outputs lack ControlTopicArn, TocQueueUrl, ReportQueueUrl/,
    );
  });
});

describe("master --launch's Spot settings", () => {
  it("refuses --spot-fallback without --spot, naming both, with exit code 2", () => {
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        "master",
        "--source",
        os.tmpdir(),
        "--topic-arn",
        "arn:aws:sns:us-east-1:000000000000:control",
        "--toc-queue-url",
        "http://127.0.0.1:9/000000000000/toc",
        "--report-queue-url",
        "http://127.0.0.1:9/000000000000/report",
        "--launch",
        "--spot-fallback",
        "--launch-template-id",
        LT,
        "--fleet-name",
        "S3BucketLoader",
      ],
      { encoding: "utf8", env: testEnv(), timeout: 60_000 },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--spot-fallback: falls back from Spot to On-Demand, so it needs --spot/);
  });
});
