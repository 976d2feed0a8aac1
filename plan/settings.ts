/** The settings table of `plan` (and of the estimate a dry run prints), beside its program. */
import { z } from "zod";
import { setting } from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { int } from "../core/setting-schemas.ts";
import { workerSettings, writeSettings } from "../worker/settings.ts";
import { DEFAULT_PRICES, INSTANCE_TYPES } from "./prices.ts";

const price = z.coerce
  .number({ error: "expected a price in dollars such as 0.005" })
  .nonnegative("expected a price in dollars such as 0.005");
const positive = (what: string) =>
  z.coerce.number({ error: `expected ${what}` }).positive(`expected ${what}`);

/** Settings the plan shares with a dry run: the fleet and the prices. */
export const estimateSettings = {
  instanceType: setting<string>({
    flag: "instance-type",
    type: "string",
    describe: `the workers' instance type (priced: ${Object.keys(INSTANCE_TYPES).join(", ")}; others need --price-instance-per-hour)`,
    schema: z
      .string()
      .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, "expected an EC2 instance type such as c6i.large"),
    default: "c6i.large",
  }),
  volumeGib: setting<number>({
    flag: "volume-gib",
    type: "number",
    describe: "each worker's root volume (gp3), GiB",
    schema: int(8, 16_384),
    default: 100,
  }),
  filesPerSecPerWorker: setting<number | undefined>({
    flag: "files-per-sec-per-worker",
    type: "number",
    describe: "small files one worker writes per second",
    schema: positive("a number of files per second").optional(),
    defaultText: "300 to s3://, 50 through a yas3fs mount",
  }),
  bootSec: setting<number>({
    flag: "boot-sec",
    type: "number",
    describe: "from launch to the first WRITE (boot, install, mounts)",
    schema: int(0, 86_400),
    default: 300,
  }),
  sqsRequestsPerEntry: setting<number>({
    flag: "sqs-requests-per-entry",
    type: "number",
    describe: "SQS requests per entry, all phases (a run's report gives the measured figure)",
    schema: positive("a number such as 0.03"),
    default: 0.03,
  }),
  priceS3PutPer1k: setting<number>({
    flag: "price-s3-put-per-1k",
    type: "number",
    describe: "S3 PUT price per 1,000 requests, $",
    schema: price,
    default: DEFAULT_PRICES.s3PutPer1k,
  }),
  priceS3HeadPer1k: setting<number>({
    flag: "price-s3-head-per-1k",
    type: "number",
    describe: "S3 GET/HEAD price per 1,000 requests, $",
    schema: price,
    default: DEFAULT_PRICES.s3HeadPer1k,
  }),
  priceSqsPerMillion: setting<number>({
    flag: "price-sqs-per-million",
    type: "number",
    describe: "SQS price per million requests, $",
    schema: price,
    default: DEFAULT_PRICES.sqsPerMillion,
  }),
  priceInstancePerHour: setting<number | undefined>({
    flag: "price-instance-per-hour",
    type: "number",
    describe: "the instance type's On-Demand price per hour, $",
    schema: price.optional(),
    defaultText: "from the table for --instance-type",
  }),
  priceDatasyncPerGb: setting<number>({
    flag: "price-datasync-per-gb",
    type: "number",
    describe: "AWS DataSync Basic price per GB, $",
    schema: price,
    default: DEFAULT_PRICES.dataSyncBasicPerGb,
  }),
};

export const planSettings = {
  source: setting<string>({
    flag: "source",
    env: ENV.source,
    type: "string",
    describe: "the directory to load",
    schema: z.string({ error: "expected a directory" }).min(1, "expected a directory"),
  }),
  target: setting<string>({
    flag: "target",
    env: ENV.target,
    type: "string",
    describe: "s3://BUCKET[/PREFIX] (keys are checked against 1,024 bytes) or a yas3fs mount",
    schema: z.string().min(1).default("s3://bucket"),
    defaultText: "s3://bucket",
  }),
  workers: setting<number>({
    flag: "workers",
    type: "number",
    describe: "workers in the fleet",
    schema: int(1, 10_000),
    default: 10,
  }),
  // The worker's own settings: the plan estimates the run the workers would make with them.
  targetEmpty: workerSettings.targetEmpty,
  storageClass: writeSettings.storageClass,
  allowArchiveClasses: writeSettings.allowArchiveClasses,
  sse: writeSettings.sse,
  sseKmsKeyId: writeSettings.sseKmsKeyId,
  tag: writeSettings.tag,
  tagRunId: writeSettings.tagRunId,
  sample: setting<number | undefined>({
    flag: "sample",
    type: "number",
    describe: "stop the walk after this many entries (a sample of a huge tree)",
    schema: int(1, Number.MAX_SAFE_INTEGER).optional(),
  }),
  totalEntries: setting<number | undefined>({
    flag: "total-entries",
    type: "number",
    describe: "with --sample: the whole tree's entries, to scale the estimate to",
    schema: int(1, Number.MAX_SAFE_INTEGER).optional(),
  }),
  multipartThresholdMb: setting<number>({
    flag: "multipart-threshold-mb",
    type: "number",
    describe: "files of this many MiB or more are uploaded in parts",
    schema: int(5, 5 * 1024),
    default: 8,
  }),
  partSizeMb: setting<number>({
    flag: "part-size-mb",
    type: "number",
    describe: "smallest part size in MiB",
    schema: int(5, 5 * 1024),
    default: 8,
  }),
  ...estimateSettings,
};
