/**
 * The master's settings for a deployed stack: where its outputs come from (`--stack`, `--outputs-file`), and
 * the worker fleet (`--launch`, `--spot`, the launch template and subnets the outputs name). Declared like the
 * other tables of `core/config.ts`, and merged with the master's own.
 */
import { z } from "zod";
import type { Setting } from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { bool, int, url } from "../core/setting-schemas.ts";
import { DEADLINE_SHAPE } from "./fleet-sizing.ts";
import { masterSettings } from "./settings.ts";

export const deploymentSettings = {
  region: masterSettings.region,
  endpointUrl: masterSettings.endpointUrl,
  stack: {
    flag: "stack",
    env: ENV.stack,
    type: "string",
    describe:
      "take the topic, queues, region, launch template and subnets from this deployed stack's outputs",
    schema: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, "expected a CloudFormation stack name such as S3BucketLoader")
      .optional(),
  } satisfies Setting<string | undefined>,
  outputsFile: {
    flag: "outputs-file",
    type: "string",
    describe: "take them from the file `cdk deploy --outputs-file FILE` wrote instead",
    schema: z.string().min(1, "expected a file path").optional(),
  } satisfies Setting<string | undefined>,
  cloudformationEndpointUrl: {
    flag: "cloudformation-endpoint-url",
    env: ENV.cloudformationEndpointUrl,
    type: "string",
    describe: "a CloudFormation-compatible endpoint; unset for AWS",
    schema: url.optional(),
  } satisfies Setting<string | undefined>,
};

export const fleetSettings = {
  launch: {
    flag: "launch",
    type: "boolean",
    describe:
      "launch --workers instances from the stack's launch template, and terminate them when the run ends",
    schema: bool,
    default: false,
  } satisfies Setting<boolean>,
  spot: {
    flag: "spot",
    type: "boolean",
    describe: "launch Spot instances instead of On-Demand",
    schema: bool,
    default: false,
  } satisfies Setting<boolean>,
  launchTemplateId: {
    flag: "launch-template-id",
    type: "string",
    describe: "the workers' launch template (from the stack's outputs)",
    schema: z
      .string()
      .regex(/^lt-[0-9a-f]{8,17}$/, "expected a launch template id such as lt-0123456789abcdef0")
      .optional(),
  } satisfies Setting<string | undefined>,
  subnetIds: {
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
  } satisfies Setting<string | undefined>,
  fleetName: {
    flag: "fleet-name",
    type: "string",
    describe: "the fleet tag the instances carry (from the stack's outputs: the stack name)",
    schema: z
      .string()
      .regex(/^[\w.:/=+@-]{1,128}$/, "expected a tag value")
      .optional(),
  } satisfies Setting<string | undefined>,
  fleetDrainSec: {
    flag: "fleet-drain-sec",
    type: "number",
    describe:
      "after a run that ended by itself, how long workers get to upload logs and power off before termination",
    schema: int(0, 3_600),
    default: 300,
  } satisfies Setting<number>,
  fleetPollSec: {
    flag: "fleet-poll-sec",
    type: "number",
    describe: "how often the fleet's instances are described",
    schema: int(1, 600),
    default: 15,
  } satisfies Setting<number>,
  deadline: {
    flag: "deadline",
    type: "string",
    describe:
      "with --launch: be done by then, a duration from the start (90m, 2h, 1h30m) or a time (2026-12-02T06:00:00Z); the fleet grows and shrinks from --workers to meet it",
    schema: z
      .string()
      .regex(
        DEADLINE_SHAPE,
        "expected a duration such as 2h, 90m or 1h30m, or a time such as 2026-12-02T06:00:00Z",
      )
      .optional(),
  } satisfies Setting<string | undefined>,
  budget: {
    flag: "budget",
    type: "number",
    describe:
      "with --launch: dollars the run may cost (instance time and S3 requests, by the plan's prices); without --deadline the fleet runs as fast as it allows",
    schema: z.coerce
      .number({ error: "expected dollars, such as 40" })
      .positive("expected dollars above 0")
      .optional(),
  } satisfies Setting<number | undefined>,
  maxWorkers: {
    flag: "max-workers",
    type: "number",
    describe: "with --deadline or --budget: never more worker instances than this at once",
    schema: int(1, 10_000),
    default: 20,
  } satisfies Setting<number>,
  ec2EndpointUrl: {
    flag: "ec2-endpoint-url",
    env: ENV.ec2EndpointUrl,
    type: "string",
    describe: "an EC2-compatible endpoint; unset for AWS",
    schema: url.optional(),
  } satisfies Setting<string | undefined>,
};

/** Every setting of `s3-bucket-loader master`. */
export const masterCliSettings = { ...masterSettings, ...deploymentSettings, ...fleetSettings };
