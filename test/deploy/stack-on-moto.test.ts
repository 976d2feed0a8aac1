/**
 * The user's whole path on emulated CloudFormation, EC2, IAM, SQS, SNS and S3 (moto, one server for the
 * suite): `cdk bootstrap`; `cdk deploy` with the stack's own VPC; `master --stack … --launch`, with each
 * instance moto reports played by a real worker process started from what the instance carries; Ctrl-C in
 * WRITE; `cdk destroy`; a second deploy, into moto's default VPC (`-c vpcId=`); a Spot launch with an instance
 * that never boots; then the same load with IAM enforced, on keys of IAM users holding the stack's own
 * policies; and the last destroy. The cases run in order and share the deployments.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CloudFormationClient,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
} from "@aws-sdk/client-cloudformation";
import {
  DeleteLaunchTemplateCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import {
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateUserCommand,
  GetInstanceProfileCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListRolePoliciesCommand,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import { ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ListSubscriptionsByTopicCommand, ListTopicsCommand, SNSClient } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { FLEET_TAGS, STACK_OUTPUTS } from "../../core/deployment.ts";
import { ENV } from "../../core/env-names.ts";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport, WorkerFigures } from "../../master/report.ts";
import { renderHtmlReport } from "../../report/html-report.ts";
import { MOTO_ACCOUNT, MOTO_KEYS, MOTO_REGION, type Moto, startMoto } from "../helpers/moto.ts";
import { type Proc, startCli } from "../helpers/run.ts";
import { listTree } from "../helpers/tree.ts";
import { CdkCli, STACK } from "./cdk-cli.ts";
import { InstancePlayer, type Keys } from "./instances.ts";
import { clearVpcForDestroy, motoSupplement, type PolicyDocument } from "./moto-gaps.ts";

interface Harness {
  readonly ec2: EC2Client;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
  readonly cfn: CloudFormationClient;
  readonly iam: IAMClient;
  destroy(): void;
}

/** Longer than a worker's TOC long poll (2 s), so that none of a run's polls is still open when the next starts. */
const STALE_POLL_MS = 3_000;

describe("a load stack deployed on moto, run with launched workers, and destroyed", {
  timeout: 900_000,
}, () => {
  let moto: Moto;
  let cdk: CdkCli;
  let tmp: string;
  let source: string;
  let entries: number;
  let aws: Harness;
  const players: InstancePlayer[] = [];
  const masters: Proc[] = [];
  /** Buckets before the stack's first deploy (the bootstrap's). */
  let bucketsBefore: string[] = [];
  /** Buckets the destroyed stacks left, by design (DeletionPolicy Retain). */
  const retained: string[] = [];
  let outputs: Record<string, string> = {};

  const harness = (keys: Keys): Harness => {
    const common = { region: MOTO_REGION, endpoint: moto.url, credentials: { ...keys } };
    const h = {
      ec2: new EC2Client(common),
      s3: new S3Client({ ...common, forcePathStyle: true }),
      sqs: new SQSClient({ ...common, useQueueUrlAsEndpoint: false }),
      sns: new SNSClient(common),
      cfn: new CloudFormationClient(common),
      iam: new IAMClient(common),
    };
    return {
      ...h,
      destroy: () => {
        for (const c of Object.values(h)) c.destroy();
      },
    };
  };

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-deploy-"));
    moto = await startMoto();
    cdk = await CdkCli.create(moto, path.join(tmp, "cdk"));
    aws = harness(MOTO_KEYS);
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 120, largeFiles: 1, seed: 13 });
    entries = (await listTree(source)).length + 1;
  });

  after(async () => {
    for (const m of masters) if (m.child.exitCode === null) m.child.kill("SIGKILL");
    for (const p of players) await p.stop(1_000);
    aws?.destroy();
    await moto?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const bucketNames = async (h = aws) =>
    ((await h.s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name ?? "").sort();

  /** The stack's buckets that its template keeps on destroy. */
  const retainedBuckets = async (): Promise<string[]> => {
    const template = await cdk.template();
    const logical = Object.entries(template.Resources)
      .filter(([, r]) => r.Type === "AWS::S3::Bucket" && r.DeletionPolicy === "Retain")
      .map(([id]) => id);
    const resources =
      (await aws.cfn.send(new DescribeStackResourcesCommand({ StackName: STACK }))).StackResources ?? [];
    return resources
      .filter((r) => logical.includes(r.LogicalResourceId ?? ""))
      .map((r) => r.PhysicalResourceId ?? "")
      .sort();
  };

  /**
   * One `master --stack … --launch` run, its instances played. `silent` instances never boot; `interrupt`
   * sends Ctrl-C at the first progress line of WRITE.
   */
  const launchRun = async (
    name: string,
    o: {
      readonly workers: number;
      readonly masterKeys?: Keys;
      readonly workerKeys?: Keys;
      readonly silent?: number;
      readonly interrupt?: boolean;
      readonly args?: readonly string[];
      readonly harnessAws?: Harness;
      readonly source?: string;
      readonly workerEnv?: Readonly<Record<string, string>>;
    },
  ) => {
    const from = o.source ?? source;
    const h = o.harnessAws ?? aws;
    const runId = `${name}-${process.pid}`;
    const player = new InstancePlayer(runId, {
      ec2: h.ec2,
      s3: (keys) =>
        new S3Client({
          region: MOTO_REGION,
          endpoint: moto.url,
          forcePathStyle: true,
          credentials: { ...keys },
        }),
      endpoint: moto.url,
      keys: o.workerKeys ?? MOTO_KEYS,
      source: from,
      dir: path.join(tmp, "instances"),
      silent: o.silent ?? 0,
      ...(o.workerEnv ? { env: o.workerEnv } : {}),
    });
    players.push(player);
    const reportFile = path.join(tmp, `${name}.json`);
    const master = startCli(
      [
        "master",
        "--stack",
        STACK,
        "--launch",
        "--workers",
        String(o.workers),
        "--source",
        from,
        "--run-id",
        runId,
        "--state-dir",
        path.join(tmp, "state"),
        "--report",
        reportFile,
        "--fleet-poll-sec",
        "1",
        "--beacon-ms",
        "500",
        "--progress-ms",
        "200",
        "--fleet-drain-sec",
        "30",
        // A run that stands still fails by itself, its report naming the batches outstanding and their holders,
        // well before the test gives up on it.
        "--stall-timeout-sec",
        "90",
        ...(o.args ?? []),
      ],
      { env: moto.env(o.masterKeys ?? MOTO_KEYS) },
    );
    masters.push(master);
    let phaseAtInterrupt: unknown;
    if (o.interrupt) {
      const line = await master.waitFor((l) => l.event === "progress" && l.phase === "WRITE", 120_000);
      phaseAtInterrupt = line.phase;
      master.child.kill("SIGINT");
    }
    const timer = setTimeout(() => master.child.kill("SIGKILL"), 240_000);
    const { code } = await master.exited;
    clearTimeout(timer);
    await player.stop();
    // The runs share the stack's TOC queue. A worker that ends with a receive in flight (it aborts its 2 s long
    // poll at SHUTDOWN, or is killed) leaves that poll open on the queue's side for up to 2 s; moto then hands the
    // next run's first batches to it, and they stay hidden for the queue's 5 minutes. (So would SQS, to a poll whose
    // answer is lost: see the README's guarantees.) The next run starts once no poll of this one can be open.
    await new Promise((resolve) => setTimeout(resolve, STALE_POLL_MS));
    const report: RunReport | null = JSON.parse(await fs.readFile(reportFile, "utf8").catch(() => "null"));
    const instances = await describeInstances(h, runId);
    const played = [...player.played.values()];
    /** What a failed assertion shows: the master's last lines, each worker's, the player's problems. */
    const why = () =>
      [
        `master:\n${lastLines(master.stderr())}`,
        ...played.map((p) => `worker on ${p.id}:\n${lastLines(p.worker?.stderr() ?? "")}`),
        `player: ${player.problems.join("; ") || "no problem"}`,
      ].join("\n");
    // A run that failed (not the one interrupted on purpose) leaves its whole logs where the test's output says:
    // the suite's folder is removed at its end.
    const kept = code === 0 || (o.interrupt && code === 130) ? null : await keepLogs(name, master, played);
    const whyAll = () => `${why()}${kept ? `\nwhole logs: ${kept}` : ""}`;
    return { code, report, player, master, runId, instances, phaseAtInterrupt, why: whyAll };
  };

  const keepLogs = async (name: string, master: Proc, played: { id: string; worker?: Proc }[]) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `s3bl-deploy-failed-${name}-`));
    await fs.writeFile(path.join(dir, "master.log"), master.stderr());
    for (const p of played) await fs.writeFile(path.join(dir, `${p.id}.log`), p.worker?.stderr() ?? "");
    return dir;
  };

  /** The last lines of a log without the progress lines, then its last two progress lines (where a run stood). */
  const lastLines = (log: string) => {
    const lines = log.split("\n");
    const progress = (l: string) => l.includes('"event":"progress"');
    return [...lines.filter((l) => !progress(l)).slice(-15), ...lines.filter(progress).slice(-2)].join("\n");
  };

  const describeInstances = async (h: Harness, runId: string) => {
    const out = await h.ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: `tag:${FLEET_TAGS.runId}`, Values: [runId] }] }),
    );
    return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  };

  const objectKeys = async (bucket: string, prefix = "", h = aws) => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      // The whole bucket, filtered here: with IAM on, moto refuses the signature of a listing whose prefix
      // has a '/' in it.
      const page = await h.s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((c) => c.Key ?? "").filter((k) => k.startsWith(prefix)));
      token = page.NextContinuationToken;
    } while (token);
    return keys;
  };

  /** Every file of the source tree is an object under `prefix` in the bucket. */
  const assertTreeInBucket = async (bucket: string, prefix: string, h = aws, tree = source) => {
    const keys = new Set(await objectKeys(bucket, prefix, h));
    const files: string[] = [];
    for (const rel of await listTree(tree)) {
      if ((await fs.lstat(path.join(tree, rel))).isFile()) files.push(rel);
    }
    assert.ok(files.length > 50);
    const missing = files.filter((f) => !keys.has(`${prefix}${f}`));
    assert.deepEqual(missing, [], `files missing from s3://${bucket}/${prefix}`);
  };

  /** The workers' own queues and subscriptions, which each worker deletes when it ends. */
  const workerLeftovers = async (h = aws) => {
    const queues = (await h.sqs.send(new ListQueuesCommand({ QueueNamePrefix: "s3bl-w-" }))).QueueUrls ?? [];
    const subs =
      (
        await h.sns.send(
          new ListSubscriptionsByTopicCommand({ TopicArn: outputs[STACK_OUTPUTS.topicArn] ?? "" }),
        )
      ).Subscriptions ?? [];
    return { queues, subscriptions: subs.map((s) => s.Endpoint ?? "") };
  };

  it("cdk bootstrap prepares moto's account", async () => {
    await cdk.bootstrap(MOTO_ACCOUNT, MOTO_REGION);
    const out = await aws.cfn.send(new DescribeStacksCommand({ StackName: "CDKToolkit" }));
    assert.equal(out.Stacks?.[0]?.StackStatus, "CREATE_COMPLETE");
    bucketsBefore = await bucketNames();
    assert.equal(bucketsBefore.length, 1, "the bootstrap's assets bucket");
  });

  it("cdk deploy creates the stack with its own VPC; DescribeStacks gives its outputs; its launch template has what moto's instances ignore", async () => {
    outputs = await cdk.deploy();
    const described = (await aws.cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks?.[0];
    assert.equal(described?.StackStatus, "CREATE_COMPLETE");
    const fromStack = Object.fromEntries((described?.Outputs ?? []).map((x) => [x.OutputKey, x.OutputValue]));
    assert.deepEqual(fromStack, outputs);
    for (const name of Object.values(STACK_OUTPUTS)) assert.ok(outputs[name], `output ${name}`);

    // moto's instances take neither the instance profile, nor the metadata options, nor the shutdown
    // behaviour of their template: the template itself must carry them.
    const lt = outputs[STACK_OUTPUTS.launchTemplateId] as string;
    const version = (
      await aws.ec2.send(
        new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt, Versions: ["$Latest"] }),
      )
    ).LaunchTemplateVersions?.[0]?.LaunchTemplateData;
    assert.equal(
      version?.InstanceInitiatedShutdownBehavior,
      "terminate",
      "a worker's power-off ends its instance",
    );
    assert.deepEqual(version?.MetadataOptions, {
      HttpTokens: "required",
      HttpPutResponseHopLimit: 1,
      InstanceMetadataTags: "enabled",
    });
    const profileName = (version?.IamInstanceProfile?.Arn ?? "").split("/").pop() ?? "";
    const profile = await aws.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: profileName }));
    assert.deepEqual(
      profile.InstanceProfile?.Roles?.map((r) => r.Arn),
      [outputs[STACK_OUTPUTS.workerRoleArn]],
      "the instances run as the stack's worker role",
    );
    const subnets = (outputs[STACK_OUTPUTS.subnetIds] ?? "").split(",");
    const described2 = await aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnets }));
    const vpcs = new Set((described2.Subnets ?? []).map((s) => s.VpcId));
    assert.equal(subnets.length, 2);
    assert.equal(vpcs.size, 1);
    const vpc = (await aws.ec2.send(new DescribeVpcsCommand({ VpcIds: [...vpcs] as string[] }))).Vpcs?.[0];
    assert.equal(vpc?.CidrBlock, "10.42.0.0/16", "the stack's own VPC");
  });

  it("master --stack --launch --workers 2 loads the tree into the stack's bucket, one worker per instance, and ends the fleet and the workers' queues", async () => {
    const r = await launchRun("load", { workers: 2 });
    assert.equal(r.code, 0, r.why());
    assert.deepEqual(r.player.problems, []);
    assert.equal(r.report?.outcome, "succeeded");
    assert.equal(r.report?.validate.ok, entries);
    await assertTreeInBucket(outputs[STACK_OUTPUTS.targetBucket] as string, "");

    // moto starts MinCount (1) instances per RunInstances where EC2 starts up to MaxCount: the two come from
    // the master's launch into its first subnet and then its second, as when a zone runs short of capacity.
    assert.equal(r.instances.length, 2);
    assert.deepEqual(
      r.report?.workers.map((w) => w.id).sort(),
      r.instances.map((i) => i.InstanceId).sort(),
      "the workers are named after their instances",
    );
    for (const i of r.instances) {
      assert.equal(i.State?.Name, "terminated", i.InstanceId);
      const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]));
      assert.equal(tags["aws:ec2launchtemplate:id"], outputs[STACK_OUTPUTS.launchTemplateId]);
      assert.equal(tags[FLEET_TAGS.fleet], outputs[STACK_OUTPUTS.fleetName]);
      assert.ok((outputs[STACK_OUTPUTS.subnetIds] ?? "").split(",").includes(i.SubnetId ?? ""));
      // What the user data gave the worker is the stack's, read from the instance, not repeated here.
      const env = r.player.played.get(i.InstanceId ?? "")?.env ?? {};
      assert.equal(env[ENV.topicArn], outputs[STACK_OUTPUTS.topicArn]);
      assert.equal(env[ENV.tocQueueUrl], outputs[STACK_OUTPUTS.tocQueueUrl]);
      assert.equal(env[ENV.reportQueueUrl], outputs[STACK_OUTPUTS.reportQueueUrl]);
      assert.equal(env[ENV.target], `s3://${outputs[STACK_OUTPUTS.targetBucket]}`);
      assert.equal(env[ENV.source], source);
      assert.equal(env[ENV.runId], r.runId);
    }
    assert.deepEqual(await workerLeftovers(), { queues: [], subscriptions: [] });
  });

  it("Ctrl-C in WRITE stops the run with exit 130 and a partial report, and terminates the fleet", async () => {
    const r = await launchRun("intr", { workers: 2, args: ["--batch-entries", "5"], interrupt: true });
    assert.equal(r.phaseAtInterrupt, "WRITE");
    assert.equal(r.code, 130, r.why());
    assert.deepEqual(r.player.problems, []);
    assert.equal(r.report?.outcome, "interrupted");
    assert.ok(r.report?.phases.WRITE, "it had entered WRITE");
    assert.equal(r.report?.phases.VALIDATE, undefined, "it stopped before VALIDATE");
    assert.equal(r.instances.length, 2);
    assert.ok(
      r.instances.every((i) => i.State?.Name === "terminated"),
      JSON.stringify(r.instances.map((i) => i.State)),
    );
    for (const p of r.player.played.values())
      assert.notEqual(p.worker?.child.exitCode ?? p.worker?.child.signalCode, null);
  });

  describe("a fleet sized to a deadline, its stand-in workers at a set pace", () => {
    let paced = "";
    let pacedEntries = 0;
    before(async () => {
      paced = path.join(tmp, "paced");
      await makeSampleTree(paced, { files: 70, largeFiles: 0, seed: 17 });
      pacedEntries = (await listTree(paced)).length + 1;
    });
    const timeline = (r: { report: RunReport | null }) =>
      (r.report?.fleet?.timeline ?? []).map((row) => `${row.at} ${row.action}: ${row.reason}`).join("\n");
    /** Every entry written once: the workers' own counts add up to the run's (a batch done twice would not). */
    const writtenOnce = (report: RunReport | null) => {
      const perWorker = (report?.workers ?? []).reduce((n, w) => n + w.write.ok + w.write.unchanged, 0);
      assert.equal(perWorker, (report?.write.ok ?? -1) + (report?.write.unchanged ?? -1));
      assert.equal(report?.delivery.duplicates, 0);
    };

    it("grows from one worker to meet a deadline one worker would miss, and meets it", async (t) => {
      // One worker at 4 entries/s writes and checks the tree's ~80 entries in ~40 s: past the 45 s deadline with
      // its start; the forecast asks for more as soon as the first results give the rate.
      const started = Date.now();
      const r = await launchRun("grow", {
        workers: 1,
        source: paced,
        workerEnv: { [ENV.maxEntriesPerSec]: "4" },
        args: ["--deadline", "45s", "--max-workers", "4", "--boot-sec", "4", "--batch-entries", "4"],
      });
      assert.equal(r.code, 0, r.why());
      assert.deepEqual(r.player.problems, []);
      assert.equal(r.report?.outcome, "succeeded");
      assert.equal(r.report?.validate.ok, pacedEntries);
      const rows = r.report?.fleet?.timeline ?? [];
      assert.equal(rows[0]?.action, "start 1", timeline(r));
      const launches = rows.filter((row) => row.action.startsWith("launch"));
      assert.ok(launches.length >= 1, timeline(r));
      assert.match(
        launches[0]?.reason ?? "",
        /^1 workers end at .*, after the deadline .*; \d+ end at /,
        timeline(r),
      );
      assert.ok(r.instances.length >= 2 && r.instances.length <= 4, timeline(r));
      assert.ok(r.instances.every((i) => i.State?.Name === "terminated"));
      assert.ok((r.report?.workers.length ?? 0) >= 2, "the launched instances' workers joined the run");
      const deadline = rows[0]?.deadline ?? "";
      // 45 s from the master's start, which is after the player's and the CLI's own start. The timeline shows
      // times to the second, cut: the deadline it shows is up to 999 ms before the master's own.
      const fromStart = Date.parse(deadline) + 999 - started;
      assert.ok(fromStart >= 45_000 && fromStart < 60_000, `${deadline}: ${fromStart} ms`);
      assert.ok(
        Date.parse(r.report?.endedAt ?? "") <= Date.parse(deadline),
        `${r.report?.endedAt} ${timeline(r)}`,
      );
      assert.ok(rows.every((row) => row.spentDollars >= 0 && row.deadline === deadline));
      writtenOnce(r.report);
      const page = renderHtmlReport(r.report as RunReport);
      assert.match(page, /<h2>Fleet timeline<\/h2>/);
      assert.match(page, /<code>launch \d<\/code>/);
      t.diagnostic(`ended ${r.report?.endedAt}, deadline ${deadline}; the fleet timeline:\n${timeline(r)}`);
    });

    it("drains the workers it does not need when far ahead of the deadline; they finish what they hold and end", async (t) => {
      // moto starts one instance per RunInstances, in each of the two subnets: two workers, one of them too many.
      // At 8 entries/s each worker's WRITE lasts ~5 s: long enough for its rate to be measured (3 s of work at a
      // 1 s poll) before the stage ends, however fast the writes themselves are.
      const r = await launchRun("shrink", {
        workers: 2,
        source: paced,
        workerEnv: { [ENV.maxEntriesPerSec]: "8" },
        args: ["--deadline", "10m", "--boot-sec", "4", "--batch-entries", "4"],
      });
      assert.equal(r.code, 0, r.why());
      assert.deepEqual(r.player.problems, []);
      assert.equal(r.report?.outcome, "succeeded");
      assert.equal(r.report?.validate.ok, pacedEntries);
      const drains = (r.report?.fleet?.timeline ?? []).filter((row) => row.action.startsWith("drain"));
      assert.equal(drains.length, 1, timeline(r));
      assert.match(drains[0]?.reason ?? "", /ahead of the deadline .*: 1 workers end at .*; draining 1/);
      const drained = r.report?.fleet?.drained ?? [];
      assert.equal(drained.length, 1, timeline(r));
      for (const id of drained) {
        const w: WorkerFigures | undefined = r.report?.workers.find((x) => x.id === id);
        assert.ok(w?.drainedAt, `worker ${id} is drained`);
        assert.equal(w?.state, "STOPPED");
        assert.equal(w?.lostAt, null, "drained, not lost");
        assert.equal(
          r.player.played.get(id)?.worker?.child.exitCode,
          0,
          `the worker on ${id} ended by itself`,
        );
      }
      assert.equal(r.report?.fleet?.lost.length, 0);
      assert.ok(r.instances.every((i) => i.State?.Name === "terminated"));
      writtenOnce(r.report);
      assert.deepEqual(await workerLeftovers(), { queues: [], subscriptions: [] });
      t.diagnostic(`the fleet timeline:\n${timeline(r)}`);
    });

    it("a budget run stays within its budget", async (t) => {
      // At $36 an hour an instance costs $0.01 a second and at least $0.60 (EC2's minute), so that dollars bind
      // at this scale. One worker at 4 entries/s has ~140 writes and checks left when its rate is first known:
      // ~$0.95 on its own, ~$1.40 with a second (one more minute billed), ~$1.95 with a third. The $1.80 budget
      // allows two of the four --max-workers; the run must launch the second, and no third.
      const budget = 1.8;
      const r = await launchRun("budget", {
        workers: 1,
        source: paced,
        workerEnv: { [ENV.maxEntriesPerSec]: "4" },
        args: [
          ["--budget", String(budget)],
          ["--price-instance-per-hour", "36"],
          ["--max-workers", "4"],
          ["--boot-sec", "4"],
          ["--batch-entries", "4"],
        ].flat(),
      });
      assert.equal(r.code, 0, r.why());
      assert.deepEqual(r.player.problems, []);
      assert.equal(r.report?.outcome, "succeeded");
      assert.equal(r.report?.validate.ok, pacedEntries);
      const rows = r.report?.fleet?.timeline ?? [];
      assert.equal(rows[0]?.action, "start 1", timeline(r));
      const launches = rows.filter((row) => row.action.startsWith("launch"));
      assert.equal(launches.length, 1, timeline(r));
      // The budget, not --max-workers, sets the size: the decision says so.
      const allows = /^the fastest fleet the budget allows; the budget \$1\.8 allows (\d+)$/.exec(
        launches[0]?.reason ?? "",
      );
      assert.ok(allows, timeline(r));
      const size = Number(allows[1]);
      assert.ok(size >= 2 && size < 4, timeline(r));
      assert.equal(launches[0]?.action, `launch ${size - 1}`, timeline(r));
      assert.equal(rows.filter((row) => row.action.startsWith("drain")).length, 0, timeline(r));
      assert.ok(r.instances.length <= size, `${r.instances.length} instances, the budget's size ${size}`);
      assert.ok(r.instances.every((i) => i.State?.Name === "terminated"));
      assert.equal(r.report?.workers.length, r.instances.length, "every instance's worker joined the run");
      // The money: every row and the last live figure within the budget, and at least each instance's minute.
      assert.ok(
        rows.every((row) => row.spentDollars >= 0 && row.spentDollars <= budget),
        timeline(r),
      );
      const progress = r.master.lines.filter((l) => l.event === "progress" && l.fleet);
      const last = progress[progress.length - 1]?.fleet as { spentDollars: number; budgetDollars: number };
      assert.equal(last?.budgetDollars, budget);
      assert.ok(last.spentDollars <= budget, `$${last.spentDollars} spent of $${budget}`);
      assert.ok(last.spentDollars >= 0.6 * r.instances.length, `$${last.spentDollars} spent`);
      writtenOnce(r.report);
      t.diagnostic(
        `${r.instances.length} instances, $${last.spentDollars} spent of $${budget}; the fleet timeline:\n${timeline(r)}`,
      );
    });
  });

  it("cdk destroy removes the stack and leaves exactly the retained buckets", async () => {
    const keep = await retainedBuckets();
    assert.deepEqual(
      keep,
      [outputs[STACK_OUTPUTS.logsBucket], outputs[STACK_OUTPUTS.targetBucket]].sort(),
      "the target and the logs are kept",
    );
    const template = await cdk.template();
    const count = (type: string) => Object.values(template.Resources).filter((r) => r.Type === type).length;
    const subnets = (outputs[STACK_OUTPUTS.subnetIds] ?? "").split(",");
    const vpcId =
      (await aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnets }))).Subnets?.[0]?.VpcId ?? "";
    const cleared = await clearVpcForDestroy(aws.ec2, vpcId);
    assert.deepEqual(cleared, {
      endpoints: count("AWS::EC2::VPCEndpoint"),
      routeTables: count("AWS::EC2::RouteTable"),
      internetGateways: count("AWS::EC2::InternetGateway"),
    });
    await cdk.destroy();
    await assert.rejects(
      aws.cfn.send(new DescribeStacksCommand({ StackName: STACK })),
      /does not exist/,
      "the stack is gone",
    );
    retained.push(...keep);
    assert.deepEqual(await bucketNames(), [...bucketsBefore, ...retained].sort());
    assert.deepEqual(
      (
        (await aws.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] })))
          .Vpcs ?? []
      ).length,
      0,
      "the VPC is gone",
    );
    const queues = (await aws.sqs.send(new ListQueuesCommand({ QueueNamePrefix: STACK }))).QueueUrls ?? [];
    assert.deepEqual(queues, []);
    const topics = (await aws.sns.send(new ListTopicsCommand({}))).Topics ?? [];
    assert.deepEqual(
      topics.filter((t) => t.TopicArn === outputs[STACK_OUTPUTS.topicArn]),
      [],
    );
    const templates = (await aws.ec2.send(new DescribeLaunchTemplatesCommand({}))).LaunchTemplates ?? [];
    assert.deepEqual(
      templates.map((t) => t.LaunchTemplateId).filter((id) => id === outputs[STACK_OUTPUTS.launchTemplateId]),
      [],
    );
  });

  let defaultVpc = "";
  const prefix = "loads/2026";

  it("a second deploy, after the destroy, goes into moto's default VPC (-c vpcId=), which has only public subnets", async () => {
    const vpcs = (
      await aws.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }))
    ).Vpcs;
    defaultVpc = vpcs?.[0]?.VpcId ?? "";
    assert.match(defaultVpc, /^vpc-/);
    const first = outputs;
    outputs = await cdk.deploy({ vpcId: defaultVpc, targetPrefix: prefix });
    assert.notEqual(outputs[STACK_OUTPUTS.targetBucket], first[STACK_OUTPUTS.targetBucket], "a new bucket");
    const subnets = (outputs[STACK_OUTPUTS.subnetIds] ?? "").split(",");
    const described = (await aws.ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnets }))).Subnets ?? [];
    assert.ok(subnets.length >= 2);
    assert.ok(
      described.every((s) => s.VpcId === defaultVpc && s.MapPublicIpOnLaunch),
      "the default VPC's public subnets",
    );
  });

  it("a Spot launch where one instance never boots: it is terminated at its deadline, and the run goes on with the other", async () => {
    const r = await launchRun("spot", {
      workers: 2,
      silent: 1,
      args: ["--spot", "--init-timeout-sec", "10"],
    });
    assert.equal(r.code, 0, r.why());
    assert.deepEqual(r.player.problems, []);
    assert.equal(r.report?.outcome, "succeeded");
    assert.equal(r.report?.validate.ok, entries);
    assert.equal(r.instances.length, 2);
    assert.ok(
      r.instances.every((i) => i.InstanceLifecycle === "spot"),
      "Spot instances",
    );
    const [silent] = r.player.silent;
    assert.ok(silent);
    assert.ok(
      r.report?.notes.some((n) => n.includes(silent) && /did not announce a worker within 10 s/.test(n)),
      r.report?.notes.join("\n"),
    );
    assert.deepEqual(
      r.report?.workers.map((w) => w.id),
      r.instances.map((i) => i.InstanceId).filter((id) => id !== silent),
    );
    assert.ok(r.instances.every((i) => i.State?.Name === "terminated"));
    await assertTreeInBucket(outputs[STACK_OUTPUTS.targetBucket] as string, `${prefix}/`);
    assert.deepEqual(await workerLeftovers(), { queues: [], subscriptions: [] });
  });

  describe("with IAM enforced, on keys of IAM users holding the stack's own policies", () => {
    let masterKeys: Keys;
    let workerKeys: Keys;
    let admin: Harness;
    let outsider = "";

    const userWith = async (
      name: string,
      policies: { managed?: string; inline: Record<string, PolicyDocument> },
    ) => {
      await aws.iam.send(new CreateUserCommand({ UserName: name }));
      if (policies.managed)
        await aws.iam.send(new AttachUserPolicyCommand({ UserName: name, PolicyArn: policies.managed }));
      for (const [policyName, doc] of Object.entries(policies.inline)) {
        await aws.iam.send(
          new PutUserPolicyCommand({
            UserName: name,
            PolicyName: policyName,
            PolicyDocument: JSON.stringify(doc),
          }),
        );
      }
      const key = (await aws.iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
      return { accessKeyId: key?.AccessKeyId ?? "", secretAccessKey: key?.SecretAccessKey ?? "" };
    };

    before(async () => {
      // The master's: the stack's managed policy, attached as a user would attach it.
      const policyArn = outputs[STACK_OUTPUTS.masterPolicyArn] as string;
      const version = (await aws.iam.send(new GetPolicyCommand({ PolicyArn: policyArn }))).Policy
        ?.DefaultVersionId;
      const masterDoc = JSON.parse(
        decodeURIComponent(
          (await aws.iam.send(new GetPolicyVersionCommand({ PolicyArn: policyArn, VersionId: version })))
            .PolicyVersion?.Document ?? "",
        ),
      ) as PolicyDocument;
      const masterGap = motoSupplement(masterDoc);
      masterKeys = await userWith("load-master", {
        managed: policyArn,
        inline: masterGap ? { "moto-gaps": masterGap } : {},
      });
      // The workers': the instance role's own policies, given to a user (moto's instances have no role).
      const role = (outputs[STACK_OUTPUTS.workerRoleArn] ?? "").split("/").pop() ?? "";
      const inline: Record<string, PolicyDocument> = {};
      for (const name of (await aws.iam.send(new ListRolePoliciesCommand({ RoleName: role }))).PolicyNames ??
        []) {
        const doc = (await aws.iam.send(new GetRolePolicyCommand({ RoleName: role, PolicyName: name })))
          .PolicyDocument;
        const parsed = JSON.parse(decodeURIComponent(doc ?? "")) as PolicyDocument;
        inline[name] = parsed;
        const gap = motoSupplement(parsed);
        if (gap) inline[`${name}-moto-gaps`] = gap;
      }
      assert.ok(Object.keys(inline).length > 0, "the worker role has policies");
      workerKeys = await userWith("load-worker", { inline });
      const adminKeys = await userWith("harness", {
        inline: {
          all: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] },
        },
      });
      outsider = (await aws.sqs.send(new CreateQueueCommand({ QueueName: "not-the-stacks" }))).QueueUrl ?? "";
      await moto.enforceIam();
      admin = harness(adminKeys);
      await assert.rejects(aws.sqs.send(new ListQueuesCommand({})), "the keys of no user no longer work");
    });

    after(async () => {
      admin?.destroy();
      // IAM off again, for the destroy.
      await moto.relaxIam();
    });

    it("the load runs on the master's and the workers' keys, into the target prefix", async () => {
      // moto refuses the signature of any S3 request for a key with non-ASCII characters once it checks
      // signatures (boto3's requests too): this load's tree has ASCII names only.
      const ascii = path.join(tmp, "src-ascii");
      await fs.cp(source, ascii, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      for (const rel of (await listTree(ascii)).reverse()) {
        if (/[^\x20-\x7e]/.test(path.basename(rel)))
          await fs.rm(path.join(ascii, rel), { recursive: true, force: true });
      }
      const asciiEntries = (await listTree(ascii)).length + 1;
      assert.ok(asciiEntries > 50 && asciiEntries < entries);
      const r = await launchRun("iam", {
        workers: 2,
        masterKeys,
        workerKeys,
        harnessAws: admin,
        source: ascii,
      });
      assert.equal(r.code, 0, r.why());
      assert.deepEqual(r.player.problems, []);
      assert.equal(r.report?.outcome, "succeeded");
      assert.equal(r.report?.validate.ok, asciiEntries);
      assert.ok(r.instances.every((i) => i.State?.Name === "terminated"));
      await assertTreeInBucket(outputs[STACK_OUTPUTS.targetBucket] as string, `${prefix}/`, admin, ascii);
      assert.deepEqual(await workerLeftovers(admin), { queues: [], subscriptions: [] });
    });

    const denied =
      (status = 403) =>
      (err: unknown) => {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
        assert.equal(e.$metadata?.httpStatusCode, status, String(err));
        return true;
      };

    it("a worker's key cannot write outside the target prefix, nor into the logs bucket outside its prefix, nor send to the TOC queue", async () => {
      const w = harness(workerKeys);
      try {
        const bucket = outputs[STACK_OUTPUTS.targetBucket] as string;
        await w.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/probe`, Body: "in" }));
        await assert.rejects(
          w.s3.send(new PutObjectCommand({ Bucket: bucket, Key: "elsewhere/probe", Body: "out" })),
          denied(),
        );
        await assert.rejects(
          w.s3.send(
            new PutObjectCommand({ Bucket: outputs[STACK_OUTPUTS.logsBucket], Key: "runs/x", Body: "x" }),
          ),
          denied(),
          "only the logs prefix of the logs bucket",
        );
        await assert.rejects(
          w.sqs.send(
            new SendMessageCommand({ QueueUrl: outputs[STACK_OUTPUTS.tocQueueUrl], MessageBody: "{}" }),
          ),
          denied(),
        );
      } finally {
        w.destroy();
      }
    });

    it("the master's key cannot do what its policy leaves out", async () => {
      const m = harness(masterKeys);
      try {
        await assert.rejects(
          m.s3.send(
            new PutObjectCommand({
              Bucket: outputs[STACK_OUTPUTS.targetBucket],
              Key: `${prefix}/x`,
              Body: "x",
            }),
          ),
          denied(),
          "the master writes nothing into the target",
        );
        await assert.rejects(
          m.sqs.send(new DeleteQueueCommand({ QueueUrl: outputs[STACK_OUTPUTS.tocQueueUrl] })),
          denied(),
          "it deletes only the workers' queues",
        );
        await assert.rejects(
          m.sqs.send(new SendMessageCommand({ QueueUrl: outsider, MessageBody: "{}" })),
          denied(),
          "it sends only to the stack's queues",
        );
        await assert.rejects(
          m.ec2.send(
            new DeleteLaunchTemplateCommand({ LaunchTemplateId: outputs[STACK_OUTPUTS.launchTemplateId] }),
          ),
          denied(),
        );
        await assert.rejects(m.iam.send(new CreateUserCommand({ UserName: "escalate" })), denied());
      } finally {
        m.destroy();
      }
    });
  });

  it("cdk destroy of a stack in an existing VPC needs no help; that VPC stays, and so do the retained buckets", async () => {
    const keep = await retainedBuckets();
    assert.equal(keep.length, 2);
    await cdk.destroy();
    await assert.rejects(aws.cfn.send(new DescribeStacksCommand({ StackName: STACK })), /does not exist/);
    retained.push(...keep);
    assert.deepEqual(await bucketNames(), [...bucketsBefore, ...retained].sort());
    const vpcs = (await aws.ec2.send(new DescribeVpcsCommand({ VpcIds: [defaultVpc] }))).Vpcs ?? [];
    assert.equal(vpcs.length, 1);
  });
});
