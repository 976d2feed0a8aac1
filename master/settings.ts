/**
 * The master's settings table: what every master run takes (`masterSettings`, which the local run shares), and
 * for the `master` command also a deployed stack's outputs and the fleet it launches (`masterCliSettings`).
 */

import { z } from "zod";
import {
  type ConfigOf,
  channels,
  connection,
  defaultStateDir,
  location,
  logFormat,
  newRunId,
  queueUrl,
  runIdSchema,
  setting,
  source,
} from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { bool, int, nonEmpty, url } from "../core/setting-schemas.ts";

export const masterSettings = {
  ...connection,
  ...channels,
  deadLetterQueueUrl: setting<string | undefined>({
    flag: "dead-letter-queue-url",
    env: ENV.deadLetterQueueUrl,
    type: "string",
    describe: "the TOC queue's dead-letter queue: its batches are reported as failed",
    schema: queueUrl.optional(),
  }),
  source,
  target: setting<string | undefined>({
    flag: "target",
    env: ENV.target,
    type: "string",
    describe:
      "the workers' target (s3://BUCKET[/PREFIX] or a directory the master sees too): kept in the run record, and where --delete removes",
    schema: location.optional(),
  }),
  workers: setting({
    flag: "workers",
    type: "number",
    describe: "workers to wait for before WRITE starts",
    schema: int(1, 10_000),
    default: 1,
  }),
  runId: setting({
    flag: "run-id",
    env: ENV.runId,
    type: "string",
    describe: "this run's id",
    schema: runIdSchema,
    default: () => newRunId(),
    defaultText: "a new id",
  }),
  resume: setting({
    flag: "resume",
    type: "boolean",
    describe:
      "resume the run given by --run-id after the master stopped (crash, kill): what is already written is not copied again",
    schema: bool,
    default: false,
  }),
  failfast: setting({
    flag: "failfast",
    type: "boolean",
    describe: "stop copying at the first failure and report",
    schema: bool,
    default: false,
  }),
  report: setting<string | undefined>({
    flag: "report",
    type: "string",
    describe: "write the final report as JSON to this file",
    schema: nonEmpty("a file path").optional(),
  }),
  stateDir: setting({
    flag: "state-dir",
    type: "string",
    describe: "where the run's TOC files are kept",
    schema: nonEmpty("a directory"),
    default: (env) => defaultStateDir(env),
    defaultText: "$XDG_STATE_HOME/s3-bucket-loader or ~/.local/state/s3-bucket-loader",
  }),
  batchEntries: setting({
    flag: "batch-entries",
    type: "number",
    describe: "most entries in one TOC message",
    schema: int(1, 5_000),
    default: 500,
  }),
  batchBytes: setting({
    flag: "batch-bytes",
    type: "number",
    describe: "most file bytes in one TOC message (a larger file travels alone)",
    schema: int(1, Number.MAX_SAFE_INTEGER),
    default: 256 * 1024 * 1024,
  }),
  beaconMs: setting({
    flag: "beacon-ms",
    type: "number",
    describe: "how often the master rebroadcasts its mode",
    schema: int(100, 600_000),
    default: 3_000,
  }),
  initTimeoutSec: setting({
    flag: "init-timeout-sec",
    type: "number",
    describe: "longest wait for the expected workers to announce themselves",
    schema: int(1, 86_400),
    default: 600,
  }),
  workerTimeoutSec: setting({
    flag: "worker-timeout-sec",
    type: "number",
    describe: "a worker silent this long is declared lost",
    schema: int(1, 86_400),
    default: 60,
  }),
  awsDownTimeoutSec: setting({
    flag: "aws-down-timeout-sec",
    type: "number",
    describe:
      "while SQS cannot be reached, keep retrying this long; then the run fails with a partial report",
    schema: int(1, 86_400),
    default: 300,
  }),
  noWorkersTimeoutSec: setting({
    flag: "no-workers-timeout-sec",
    type: "number",
    describe: "with work left and no live worker this long, the run fails",
    schema: int(1, 86_400),
    default: 900,
  }),
  stallTimeoutSec: setting({
    flag: "stall-timeout-sec",
    type: "number",
    describe:
      "with batches outstanding and no batch result this long, the run fails with a partial report naming them (longer than the slowest single file takes)",
    schema: int(1, 604_800),
    default: 3_600,
  }),
  progressMs: setting({
    flag: "progress-ms",
    type: "number",
    describe: "how often the live summary is printed",
    schema: int(100, 600_000),
    default: 2_000,
  }),
  logFormat,
};

export type MasterConfig = ConfigOf<typeof masterSettings>;

/** Where a deployed stack's outputs come from (`--stack`, `--outputs-file`): they give the queues, topic and fleet. */
export const deploymentSettings = {
  region: masterSettings.region,
  endpointUrl: masterSettings.endpointUrl,
  stack: setting<string | undefined>({
    flag: "stack",
    env: ENV.stack,
    type: "string",
    describe:
      "take the topic, queues, region, launch template and subnets from this deployed stack's outputs",
    schema: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, "expected a CloudFormation stack name such as S3BucketLoader")
      .optional(),
  }),
  outputsFile: setting<string | undefined>({
    flag: "outputs-file",
    type: "string",
    describe: "take them from the file `cdk deploy --outputs-file FILE` wrote instead",
    schema: z.string().min(1, "expected a file path").optional(),
  }),
  cloudformationEndpointUrl: setting<string | undefined>({
    flag: "cloudformation-endpoint-url",
    env: ENV.cloudformationEndpointUrl,
    type: "string",
    describe: "a CloudFormation-compatible endpoint; unset for AWS",
    schema: url.optional(),
  }),
};

/** The worker fleet the master launches with `--launch` (the launch template and subnets the outputs name). */
export const fleetSettings = {
  launch: setting<boolean>({
    flag: "launch",
    type: "boolean",
    describe:
      "launch --workers instances from the stack's launch template, and terminate them when the run ends",
    schema: bool,
    default: false,
  }),
  spot: setting<boolean>({
    flag: "spot",
    type: "boolean",
    describe:
      "launch Spot instances instead of On-Demand (a subnet without Spot capacity: the next one is tried)",
    schema: bool,
    default: false,
  }),
  spotFallback: setting<boolean>({
    flag: "spot-fallback",
    type: "boolean",
    describe: "with --spot: when no subnet has Spot capacity, launch the rest On-Demand",
    schema: bool,
    default: false,
  }),
  launchTemplateId: setting<string | undefined>({
    flag: "launch-template-id",
    type: "string",
    describe: "the workers' launch template (from the stack's outputs)",
    schema: z
      .string()
      .regex(/^lt-[0-9a-f]{8,17}$/, "expected a launch template id such as lt-0123456789abcdef0")
      .optional(),
  }),
  subnetIds: setting<string | undefined>({
    flag: "subnet-ids",
    type: "string",
    describe: "comma-separated subnets to launch into, tried in order (from the stack's outputs)",
    schema: z
      .string()
      .regex(
        /^subnet-[0-9a-f]{8,17}(,subnet-[0-9a-f]{8,17})*$/,
        "expected subnet ids such as subnet-0a1b2c3d,subnet-4e5f6a7b",
      )
      .optional(),
  }),
  fleetName: setting<string | undefined>({
    flag: "fleet-name",
    type: "string",
    describe: "the fleet tag the instances carry (from the stack's outputs: the stack name)",
    schema: z
      .string()
      .regex(/^[\w.:/=+@-]{1,128}$/, "expected a tag value")
      .optional(),
  }),
  fleetDrainSec: setting<number>({
    flag: "fleet-drain-sec",
    type: "number",
    describe:
      "after a run that ended by itself, how long workers get to upload logs and power off before termination",
    schema: int(0, 3_600),
    default: 300,
  }),
  fleetPollSec: setting<number>({
    flag: "fleet-poll-sec",
    type: "number",
    describe: "how often the fleet's instances are described",
    schema: int(1, 600),
    default: 15,
  }),
  ec2EndpointUrl: setting<string | undefined>({
    flag: "ec2-endpoint-url",
    env: ENV.ec2EndpointUrl,
    type: "string",
    describe: "an EC2-compatible endpoint; unset for AWS",
    schema: url.optional(),
  }),
};

/** Every setting of `s3-bucket-loader master`: the master's own, where a deployed stack's outputs come from, and the fleet it launches. */
export const masterCliSettings = { ...masterSettings, ...deploymentSettings, ...fleetSettings };
