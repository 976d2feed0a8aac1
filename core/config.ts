/**
 * One typed configuration per program, parsed once at the edge. Each setting is declared once, with its flag,
 * its environment variable, its schema and its default; the CLI builds its options from the same table.
 * Precedence: flag, then environment variable, then the configuration file (`--config FILE`), then default.
 */
import os from "node:os";
import { z } from "zod";
import { type ConfigFileLayer, fileValue, readConfigFile } from "./config-file.ts";
import { RUN_ID_SHAPE } from "./deployment.ts";
import { ENV } from "./env-names.ts";
import { ConfigError } from "./errors.ts";
import { isS3Url, parseS3Url } from "./s3-url.ts";
import type { ConfigOf, Setting, SettingsTable as Table } from "./setting.ts";
import { bool, int, nonEmpty, url } from "./setting-schemas.ts";

export type { ConfigOf, Setting } from "./setting.ts";

const setting = <T>(s: Setting<T>): Setting<T> => s;

const queueUrl = z
  .string({ error: "expected an SQS queue URL" })
  .regex(
    /^https?:\/\/\S+\/\d+\/[\w-]{1,80}$/,
    "expected an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
  );
const topicArn = z
  .string({ error: "expected an SNS topic ARN" })
  .regex(
    /^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]{1,256}$/,
    "expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
  );
const runId = z
  .string()
  .regex(
    new RegExp(RUN_ID_SHAPE),
    "expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/** A directory, or s3://BUCKET[/PREFIX] with a valid bucket name. */
const location = nonEmpty("a directory or s3://BUCKET/PREFIX").refine(
  (v) => {
    if (!isS3Url(v)) return true;
    try {
      parseS3Url(v);
      return true;
    } catch {
      return false;
    }
  },
  {
    message:
      "expected s3://BUCKET[/PREFIX] with a valid bucket name (3-63 lower-case letters, digits, '.', '-')",
  },
);

// ---- settings shared by the programs ----

const connection = {
  region: setting({
    flag: "region",
    env: ENV.region,
    type: "string",
    describe: "AWS region",
    schema: nonEmpty("a region such as us-east-1"),
    default: "us-east-1",
  }),
  endpointUrl: setting<string | undefined>({
    flag: "endpoint-url",
    env: ENV.endpointUrl,
    type: "string",
    describe: "an AWS-compatible endpoint (an emulator); unset for AWS",
    schema: url.optional(),
  }),
};

const channels = {
  topicArn: setting({
    flag: "topic-arn",
    env: ENV.topicArn,
    type: "string",
    describe: "the control topic (SNS)",
    schema: topicArn,
  }),
  tocQueueUrl: setting({
    flag: "toc-queue-url",
    env: ENV.tocQueueUrl,
    type: "string",
    describe: "the TOC queue (SQS)",
    schema: queueUrl,
  }),
  reportQueueUrl: setting({
    flag: "report-queue-url",
    env: ENV.reportQueueUrl,
    type: "string",
    describe: "the queue workers report to (SQS)",
    schema: queueUrl,
  }),
};

const logFormat = setting<"text" | "json">({
  flag: "log-format",
  env: ENV.logFormat,
  type: "string",
  describe: "log lines as text or JSON",
  schema: z.enum(["text", "json"], { error: "expected text or json" }),
  default: "text",
});

const source = setting({
  flag: "source",
  env: ENV.source,
  type: "string",
  describe:
    "the source: a directory (every worker sees the same tree there), or s3://BUCKET[/PREFIX] to mirror a bucket",
  schema: location,
});

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
  runId: setting<string | undefined>({
    flag: "run-id",
    env: ENV.runId,
    type: "string",
    describe: "join only this run (default: the first run whose master is heard)",
    schema: runId.optional(),
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
  heartbeatMs: setting({
    flag: "heartbeat-ms",
    type: "number",
    describe: "how often a summary is sent when nothing finished",
    schema: int(100, 600_000),
    default: 5_000,
  }),
  logFormat,
};

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
    schema: runId,
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

export type WorkerConfig = ConfigOf<typeof workerSettings>;
export type MasterConfig = ConfigOf<typeof masterSettings>;

/**
 * Reads flags, then environment, then the configuration file, then defaults, and validates; every problem is
 * named in one ConfigError. The file is `file` when given, else the one `flags.config` names (`--config`).
 */
export function parseConfig<T extends Table>(
  table: T,
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  file?: ConfigFileLayer,
): ConfigOf<T> {
  const layer =
    file ?? (typeof flags.config === "string" && flags.config ? readConfigFile(flags.config) : undefined);
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(table)) {
    const fromFlag = flags[s.flag] ?? flags[key];
    const fromEnv = s.env ? env[s.env] : undefined;
    const fromFile = layer ? fileValue(layer, key, s.flag) : undefined;
    const given = (v: unknown) => v !== undefined && v !== "";
    const raw = given(fromFlag)
      ? fromFlag
      : given(fromEnv)
        ? fromEnv
        : given(fromFile) && fromFile !== null
          ? fromFile
          : typeof s.default === "function"
            ? (s.default as (e: typeof env) => unknown)(env)
            : s.default;
    const parsed = s.schema.safeParse(raw);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      const flagged = s.env ? `--${s.flag} (or ${s.env})` : `--${s.flag}`;
      const where =
        layer && !given(fromFlag) && !given(fromEnv) && given(fromFile)
          ? `${key} in ${layer.path} (${flagged})`
          : flagged;
      const got = raw === undefined ? "nothing" : JSON.stringify(raw);
      problems.push(`${where}: got ${got}; ${parsed.error.issues[0]?.message ?? "invalid"}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid settings:\n  ${problems.join("\n  ")}`);
  return out as ConfigOf<T>;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  return `${stamp}-${Math.random().toString(16).slice(2, 6)}`;
}

function defaultStateDir(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_STATE_HOME || `${os.homedir()}/.local/state`;
  return `${base}/s3-bucket-loader`;
}

export const localSettings = {
  endpointUrl: connection.endpointUrl,
  region: connection.region,
  source: setting<string | undefined>({
    flag: "source",
    env: ENV.source,
    type: "string",
    describe: "a directory or s3://BUCKET[/PREFIX] (default: a generated sample tree)",
    schema: location.optional(),
  }),
  target: setting<string | undefined>({
    flag: "target",
    env: ENV.target,
    type: "string",
    describe: "s3://BUCKET[/PREFIX] or a directory (default: a new temporary directory)",
    schema: location.optional(),
  }),
  workers: setting({
    flag: "workers",
    type: "number",
    describe: "worker processes to start",
    schema: int(1, 64),
    default: 3,
  }),
  concurrency: workerSettings.concurrency,
  copier: workerSettings.copier,
  fsCalls: workerSettings.fsCalls,
  s3Requests: workerSettings.s3Requests,
  targetEmpty: workerSettings.targetEmpty,
  yas3fsTopicArn: workerSettings.yas3fsTopicArn,
  multipartThresholdMb: workerSettings.multipartThresholdMb,
  partSizeMb: workerSettings.partSizeMb,
  validate: workerSettings.validate,
  sampleFiles: setting({
    flag: "sample-files",
    type: "number",
    describe: "files in the generated sample tree",
    schema: int(1, 10_000_000),
    default: 5_000,
  }),
  report: masterSettings.report,
  resume: masterSettings.resume,
  failfast: masterSettings.failfast,
  runId: masterSettings.runId,
  stateDir: masterSettings.stateDir,
  batchEntries: masterSettings.batchEntries,
  batchBytes: masterSettings.batchBytes,
  progressMs: masterSettings.progressMs,
  stallTimeoutSec: masterSettings.stallTimeoutSec,
  workerTimeoutSec: setting({
    flag: "worker-timeout-sec",
    type: "number",
    describe: "a worker silent this long is declared lost",
    schema: int(1, 86_400),
    default: 20,
  }),
  visibilityTimeoutSec: setting({
    flag: "visibility-timeout-sec",
    type: "number",
    describe: "TOC queue visibility timeout: how soon a dead worker's batch is handed out again",
    schema: int(2, 43_200),
    default: 30,
  }),
  namePrefix: setting({
    flag: "name-prefix",
    type: "string",
    describe: "name prefix of the topic and queues",
    schema: z.string().regex(/^[\w-]{1,40}$/, "expected 1-40 letters, digits, '_' or '-'"),
    default: "s3bl-local",
  }),
  logFormat,
};

export type LocalConfig = ConfigOf<typeof localSettings>;
