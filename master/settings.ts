/** The master's settings table (the fleet's, for `--launch`, are in fleet-settings.ts). */
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
import { bool, int, nonEmpty } from "../core/setting-schemas.ts";

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
