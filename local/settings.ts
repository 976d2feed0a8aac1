/** The local run's settings table: its own, and the worker's and the master's it hands on. */
import { z } from "zod";
import { type ConfigOf, connection, location, logFormat, setting } from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { int } from "../core/setting-schemas.ts";
import { masterSettings } from "../master/settings.ts";
import { workerSettings, writeSettings } from "../worker/settings.ts";

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
  prefixPacing: workerSettings.prefixPacing,
  prefixRateStep: workerSettings.prefixRateStep,
  targetEmpty: workerSettings.targetEmpty,
  yas3fsTopicArn: workerSettings.yas3fsTopicArn,
  multipartThresholdMb: workerSettings.multipartThresholdMb,
  partSizeMb: workerSettings.partSizeMb,
  ...writeSettings,
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
