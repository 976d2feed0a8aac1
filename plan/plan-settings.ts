/** The settings of `plan` (and of the estimate a dry run prints), declared like the programs' tables. */
import { z } from "zod";
import type { Setting } from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { DEFAULT_PRICES, INSTANCE_TYPES } from "../core/prices.ts";
import { int } from "../core/setting-schemas.ts";
import { fleetSettings } from "../master/fleet-settings.ts";
import { workerSettings } from "../worker/settings.ts";

const price = z.coerce
  .number({ error: "expected a price in dollars such as 0.005" })
  .nonnegative("expected a price in dollars such as 0.005");
const positive = (what: string) =>
  z.coerce.number({ error: `expected ${what}` }).positive(`expected ${what}`);

/** Settings the plan shares with a dry run: the fleet and the prices. */
export const estimateSettings = {
  instanceType: {
    flag: "instance-type",
    type: "string",
    describe: `the workers' instance type (priced: ${Object.keys(INSTANCE_TYPES).join(", ")}; others need --price-instance-per-hour)`,
    schema: z
      .string()
      .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, "expected an EC2 instance type such as c6i.large"),
    default: "c6i.large",
  } satisfies Setting<string>,
  volumeGib: {
    flag: "volume-gib",
    type: "number",
    describe: "each worker's root volume (gp3), GiB",
    schema: int(8, 16_384),
    default: 100,
  } satisfies Setting<number>,
  filesPerSecPerWorker: {
    flag: "files-per-sec-per-worker",
    type: "number",
    describe: "small files one worker writes per second",
    schema: positive("a number of files per second").optional(),
    defaultText: "300 to s3://, 50 through a yas3fs mount",
  } satisfies Setting<number | undefined>,
  bootSec: {
    flag: "boot-sec",
    type: "number",
    describe: "from launch to the first WRITE (boot, install, mounts)",
    schema: int(0, 86_400),
    default: 300,
  } satisfies Setting<number>,
  sqsRequestsPerEntry: {
    flag: "sqs-requests-per-entry",
    type: "number",
    describe: "SQS requests per entry, all phases (a run's report gives the measured figure)",
    schema: positive("a number such as 0.03"),
    default: 0.03,
  } satisfies Setting<number>,
  priceS3PutPer1k: {
    flag: "price-s3-put-per-1k",
    type: "number",
    describe: "S3 PUT price per 1,000 requests, $",
    schema: price,
    default: DEFAULT_PRICES.s3PutPer1k,
  } satisfies Setting<number>,
  priceS3HeadPer1k: {
    flag: "price-s3-head-per-1k",
    type: "number",
    describe: "S3 GET/HEAD price per 1,000 requests, $",
    schema: price,
    default: DEFAULT_PRICES.s3HeadPer1k,
  } satisfies Setting<number>,
  priceSqsPerMillion: {
    flag: "price-sqs-per-million",
    type: "number",
    describe: "SQS price per million requests, $",
    schema: price,
    default: DEFAULT_PRICES.sqsPerMillion,
  } satisfies Setting<number>,
  priceInstancePerHour: {
    flag: "price-instance-per-hour",
    type: "number",
    describe: "the instance type's On-Demand price per hour, $",
    schema: price.optional(),
    defaultText: "from the table for --instance-type",
  } satisfies Setting<number | undefined>,
  priceDatasyncPerGb: {
    flag: "price-datasync-per-gb",
    type: "number",
    describe: "AWS DataSync Basic price per GB, $",
    schema: price,
    default: DEFAULT_PRICES.dataSyncBasicPerGb,
  } satisfies Setting<number>,
};

export const planSettings = {
  source: {
    flag: "source",
    env: ENV.source,
    type: "string",
    describe: "the directory to load",
    schema: z.string({ error: "expected a directory" }).min(1, "expected a directory"),
  } satisfies Setting<string>,
  target: {
    flag: "target",
    env: ENV.target,
    type: "string",
    describe: "s3://BUCKET[/PREFIX] (keys are checked against 1,024 bytes) or a yas3fs mount",
    schema: z.string().min(1).default("s3://bucket"),
    defaultText: "s3://bucket",
  } satisfies Setting<string>,
  workers: {
    flag: "workers",
    type: "number",
    describe: "workers in the fleet",
    schema: int(1, 10_000),
    default: 10,
  } satisfies Setting<number>,
  // The master's own settings: the plan prints the fleet `master --launch --deadline` would start with.
  deadline: {
    ...fleetSettings.deadline,
    describe:
      "print the fleet to start with to be done within this time (90m, 2h) or by this time (2026-12-02T06:00:00Z)",
  },
  maxWorkers: fleetSettings.maxWorkers,
  // The worker's own setting: the plan estimates the run the workers would make with it.
  targetEmpty: workerSettings.targetEmpty,
  sample: {
    flag: "sample",
    type: "number",
    describe: "stop the walk after this many entries (a sample of a huge tree)",
    schema: int(1, Number.MAX_SAFE_INTEGER).optional(),
  } satisfies Setting<number | undefined>,
  totalEntries: {
    flag: "total-entries",
    type: "number",
    describe: "with --sample: the whole tree's entries, to scale the estimate to",
    schema: int(1, Number.MAX_SAFE_INTEGER).optional(),
  } satisfies Setting<number | undefined>,
  multipartThresholdMb: {
    flag: "multipart-threshold-mb",
    type: "number",
    describe: "files of this many MiB or more are uploaded in parts",
    schema: int(5, 5 * 1024),
    default: 8,
  } satisfies Setting<number>,
  partSizeMb: {
    flag: "part-size-mb",
    type: "number",
    describe: "smallest part size in MiB",
    schema: int(5, 5 * 1024),
    default: 8,
  } satisfies Setting<number>,
  ...estimateSettings,
};
