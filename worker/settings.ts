/** The worker's settings table: each setting once, with its flag, environment variable, schema and default. */
import os from "node:os";
import { z } from "zod";
import { IMDS_DEFAULT_ENDPOINT } from "../core/aws/instance-metadata.ts";
import {
  type ConfigOf,
  channels,
  connection,
  location,
  logFormat,
  runIdSchema,
  setting,
  source,
  topicArn,
} from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { bool, int, nonEmpty, url } from "../core/setting-schemas.ts";
import {
  KMS_KEY_ID,
  OTHER_STORAGE_CLASSES,
  SSE_ALGORITHMS,
  type SseAlgorithm,
  STORAGE_CLASSES,
  type StorageClass,
} from "../core/write-options.ts";

const CLASSES = `expected one of ${STORAGE_CLASSES.join(", ")}`;
const storageClass = z
  .string({ error: CLASSES })
  .superRefine((v, ctx) => {
    if ((STORAGE_CLASSES as readonly string[]).includes(v)) return;
    const other = OTHER_STORAGE_CLASSES[v];
    ctx.addIssue({
      code: "custom",
      message: other ? `${v} is only for ${other}, not a general-purpose bucket; ${CLASSES}` : CLASSES,
    });
  })
  .transform((v) => v as StorageClass);

/** Tags as given: repeated flags, or several in one value separated by commas (S3 allows none in a tag). */
const tagList = z.preprocess(
  (v) =>
    v === undefined || v === null
      ? []
      : (Array.isArray(v) ? v : [v]).flatMap((x) =>
          String(x)
            .split(",")
            .map((t) => t.trim())
            .filter((t) => t !== ""),
        ),
  z.array(z.string()),
);

/** The write options of the S3 target (see core/write-options.ts); plan and local take them as they are. */
export const writeSettings = {
  storageClass: setting<StorageClass | undefined>({
    flag: "storage-class",
    type: "string",
    describe: `S3 target: the objects' storage class (${STORAGE_CLASSES.join(", ")}); default: the bucket's, STANDARD`,
    schema: storageClass.optional(),
  }),
  allowArchiveClasses: setting({
    flag: "allow-archive-classes",
    type: "boolean",
    describe:
      "allow --storage-class GLACIER or DEEP_ARCHIVE, whose objects yas3fs cannot read until restored",
    schema: bool,
    default: false,
  }),
  sse: setting<SseAlgorithm | undefined>({
    flag: "sse",
    type: "string",
    describe:
      "S3 target: server-side encryption of each object, aws:kms (with bucket keys) or AES256; checked in VALIDATE; default: the bucket's",
    schema: z.enum(SSE_ALGORITHMS, { error: `expected ${SSE_ALGORITHMS.join(" or ")}` }).optional(),
  }),
  sseKmsKeyId: setting<string | undefined>({
    flag: "sse-kms-key-id",
    type: "string",
    describe: "with --sse aws:kms: the KMS key (id or key ARN); default: the account's aws/s3 key",
    schema: z
      .string()
      .regex(
        KMS_KEY_ID,
        "expected a KMS key id or key ARN (an alias cannot be checked in VALIDATE: give the key it names)",
      )
      .optional(),
  }),
  tag: setting<string[]>({
    flag: "tag",
    type: "string",
    describe: "S3 target: tag every object KEY=VALUE (repeat the flag, or separate with commas; at most 10)",
    schema: tagList,
    default: [],
  }),
  tagRunId: setting({
    flag: "tag-run-id",
    type: "boolean",
    describe: "S3 target: also tag every object s3bl:run-id=RUN_ID",
    schema: bool,
    default: false,
  }),
  noOverwrite: setting({
    flag: "no-overwrite",
    type: "boolean",
    describe:
      "S3 target: never replace an object (If-None-Match: *); one already there is compared like a re-run's: unchanged, or reported as existing and different",
    schema: bool,
    default: false,
  }),
};

export const workerSettings = {
  ...connection,
  ...channels,
  source,
  target: setting({
    flag: "target",
    env: ENV.target,
    type: "string",
    describe:
      "where to write: s3://BUCKET[/PREFIX] (objects in yas3fs's format), or a directory (a yas3fs mount or any file system)",
    schema: location,
  }),
  targetEmpty: setting({
    flag: "target-empty",
    type: "boolean",
    describe: "the S3 target is known to be empty: do not look for unchanged objects before writing",
    schema: bool,
    default: false,
  }),
  yas3fsTopicArn: setting<string | undefined>({
    flag: "yas3fs-topic-arn",
    env: ENV.yas3fsTopicArn,
    type: "string",
    describe: "yas3fs's SNS topic: tell live yas3fs mounts of the S3 target about new objects",
    schema: topicArn.optional(),
  }),
  multipartThresholdMb: setting({
    flag: "multipart-threshold-mb",
    type: "number",
    describe: "files of this many MiB or more are uploaded in parts",
    schema: int(5, 5 * 1024),
    default: 8,
  }),
  partSizeMb: setting({
    flag: "part-size-mb",
    type: "number",
    describe: "smallest part size in MiB (larger files get larger parts, never over 10,000 of them)",
    schema: int(5, 5 * 1024),
    default: 8,
  }),
  ...writeSettings,
  runId: setting<string | undefined>({
    flag: "run-id",
    env: ENV.runId,
    type: "string",
    describe: "join only this run (default: the first run whose master is heard)",
    schema: runIdSchema.optional(),
  }),
  workerId: setting({
    flag: "worker-id",
    env: ENV.workerId,
    type: "string",
    describe: "this worker's id",
    schema: z.string().regex(/^[\w-]{1,40}$/, "expected 1-40 letters, digits, '_' or '-'"),
    default: () =>
      `${
        os
          .hostname()
          .split(".")[0]
          ?.replace(/[^\w-]/g, "") || "worker"
      }-${process.pid}`.slice(0, 40),
    defaultText: "HOST-PID",
  }),
  concurrency: setting({
    flag: "concurrency",
    env: ENV.concurrency,
    type: "number",
    describe: "entries copied at once by this worker",
    schema: int(1, 1024),
    default: 64,
  }),
  copier: setting<"fs" | "rsync">({
    flag: "copier",
    env: ENV.copier,
    type: "string",
    describe: "fs: copy with Node's file system calls; rsync: one rsync --inplace per batch",
    schema: z.enum(["fs", "rsync"], { error: "expected fs or rsync" }),
    default: "fs",
  }),
  s3Requests: setting<"direct" | "sdk">({
    flag: "s3-requests",
    type: "string",
    describe:
      "S3 target: send single PUTs and HEADs signed by hand on the SDK's credentials and endpoint rules (direct, several times less CPU per small object) or through the SDK's own stack (sdk)",
    schema: z.enum(["direct", "sdk"], { error: "expected direct or sdk" }),
    default: "direct",
  }),
  prefixPacing: setting<"aimd" | "off">({
    flag: "prefix-pacing",
    type: "string",
    describe:
      "S3 target: when S3 answers 503 SlowDown for a prefix (a directory), pace that prefix's requests (aimd: halve the rate on each SlowDown, climb back by --prefix-rate-step per second) or only retry (off)",
    schema: z.enum(["aimd", "off"], { error: "expected aimd or off" }),
    default: "aimd",
  }),
  prefixRateStep: setting({
    flag: "prefix-rate-step",
    type: "number",
    describe:
      "requests/s a paced prefix's rate climbs by for each second without SlowDown (smaller: fewer SlowDowns, slower recovery)",
    schema: int(1, 10_000),
    default: 50,
  }),
  fsCalls: setting<"auto" | "direct" | "threads">({
    flag: "fs-calls",
    type: "string",
    describe:
      "make file system calls directly (fastest on local disks) or through the thread pool (many in flight, for NFS/EFS/FUSE); auto: direct when the source and a directory target are both local",
    schema: z.enum(["auto", "direct", "threads"], { error: "expected auto, direct or threads" }),
    default: "auto",
  }),
  validate: setting<"size" | "attrs">({
    flag: "validate",
    type: "string",
    describe: "size: existence, kind and size; attrs: also mode, owner (as root) and mtime",
    schema: z.enum(["size", "attrs"], { error: "expected size or attrs" }),
    default: "attrs",
  }),
  controlQueuePrefix: setting({
    flag: "control-queue-prefix",
    env: ENV.controlQueuePrefix,
    type: "string",
    describe: "name prefix of this worker's own control queue",
    schema: z.string().regex(/^[\w-]{1,30}$/, "expected 1-30 letters, digits, '_' or '-'"),
    default: "s3bl",
  }),
  beforeValidateCmd: setting<string | undefined>({
    flag: "before-validate-cmd",
    env: ENV.beforeValidateCmd,
    type: "string",
    describe:
      "a shell command run on entering VALIDATE, before any check (e.g. remount yas3fs with an empty cache, so checks see S3)",
    schema: nonEmpty("a command").optional(),
  }),
  exitWithParent: setting({
    flag: "exit-with-parent",
    type: "boolean",
    describe: "stop when standard input closes (a local run's workers end with it, even if it is killed)",
    schema: bool,
    default: false,
  }),
  reportMs: setting({
    flag: "report-ms",
    type: "number",
    describe: "how often finished batches are reported (and then deleted)",
    schema: int(50, 60_000),
    default: 500,
  }),
  masterTimeoutSec: setting({
    flag: "master-timeout-sec",
    env: ENV.masterTimeoutSec,
    type: "number",
    describe:
      "no word (MODE) from the master this long: put the batches in hand back, remove the control queue and exit 1 (keep it above the master's --beacon-ms)",
    schema: int(5, 86_400),
    default: 300,
  }),
  spotNotice: setting({
    flag: "spot-notice",
    env: ENV.spotNotice,
    type: "boolean",
    describe:
      "watch the instance metadata service (IMDSv2) for a Spot interruption notice, and drain on one: no new batch, the batches in hand finished or put back, results reported (on for the stack's workers)",
    schema: bool,
    default: false,
  }),
  imdsEndpoint: setting({
    flag: "imds-endpoint",
    env: ENV.imdsEndpoint,
    type: "string",
    describe: "the instance metadata service that --spot-notice asks",
    schema: url,
    default: IMDS_DEFAULT_ENDPOINT,
  }),
  spotNoticePollMs: setting({
    flag: "spot-notice-poll-ms",
    type: "number",
    describe: "how often --spot-notice asks for the interruption notice",
    schema: int(100, 60_000),
    default: 5_000,
  }),
  spotDrainSec: setting({
    flag: "spot-drain-sec",
    type: "number",
    describe:
      "after a Spot interruption notice, how long the batches in hand may take before what still runs is put back (the drain also ends 20 s before EC2 takes the instance)",
    schema: int(1, 115),
    default: 90,
  }),
  heartbeatMs: setting({
    flag: "heartbeat-ms",
    type: "number",
    describe: "how often a summary is sent when nothing finished",
    schema: int(100, 600_000),
    default: 5_000,
  }),
  logFormat,
};

export type WorkerConfig = ConfigOf<typeof workerSettings>;
