/**
 * The worker processes of a local run, started before anything else of the run (even before the master's own
 * modules have loaded: see cli/commands/local-command.ts): loading a worker is most of a small load's fixed cost.
 * Each waits for the rest of its settings on standard input (local/worker-launch.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runDir, workerLog } from "../core/run-paths.ts";
import { settingArgs } from "../core/setting.ts";
import { workerSettings } from "../worker/settings.ts";
import type { LocalConfig } from "./settings.ts";
import { LAUNCH_FLAG } from "./worker-launch.ts";

/** What every worker process of a local run is started with, before the endpoint and queues exist. */
interface WorkerStart {
  readonly config: LocalConfig;
  readonly runDir: string;
  /** UV_THREADPOOL_SIZE as the user gave it; unset, each worker sizes its own. */
  readonly threadPool: string | undefined;
}

/** Starts the run's worker processes, their logs under the run's folder. */
export function spawnWorkers(config: LocalConfig, threadPool: string | undefined): ChildProcess[] {
  const dir = runDir(config.stateDir, config.runId);
  mkdirSync(dir, { recursive: true });
  const launch: WorkerStart = { config, runDir: dir, threadPool };
  return Array.from({ length: config.workers }, (_, i) => startWorker(i + 1, launch));
}

const workerId = (workerNumber: number) => `local-${workerNumber}-${process.pid}`;

/**
 * A worker process, started before its endpoint, queues, source and target exist: the worker bundle beside this
 * one (or, from the sources, its entry) with the settings known already (its run and id among them, so that its
 * command line names them), waiting for the rest (`workerLaunch`) on its standard input, which stays open while
 * this process lives.
 */
function startWorker(workerNumber: number, launch: WorkerStart): ChildProcess {
  const { config } = launch;
  // The worker's own settings, from its table: what the local run chose for it.
  const known = settingArgs(workerSettings, {
    runId: config.runId,
    workerId: workerId(workerNumber),
    concurrency: config.concurrency,
    copier: config.copier,
    fsCalls: config.fsCalls,
    s3Requests: config.s3Requests,
    prefixPacing: config.prefixPacing,
    prefixRateStep: config.prefixRateStep,
    validate: config.validate,
    logFormat: config.logFormat,
    exitWithParent: true,
    multipartThresholdMb: config.multipartThresholdMb,
    partSizeMb: config.partSizeMb,
    targetEmpty: config.targetEmpty,
    yas3fsTopicArn: config.yas3fsTopicArn,
    storageClass: config.storageClass,
    allowArchiveClasses: config.allowArchiveClasses,
    sse: config.sse,
    sseKmsKeyId: config.sseKmsKeyId,
    tag: config.tag,
    tagRunId: config.tagRunId,
    noOverwrite: config.noOverwrite,
  });
  const child = spawn(process.execPath, [...process.execArgv, workerEntry(), LAUNCH_FLAG, ...known], {
    stdio: ["pipe", "ignore", "pipe"],
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      UV_THREADPOOL_SIZE: launch.threadPool,
    },
  });
  child.stderr?.pipe(createWriteStream(workerLog(launch.runDir, workerNumber)));
  return child;
}

/** The worker program: `worker.mjs` beside the CLI bundle, or its entry in the sources. */
function workerEntry(): string {
  const bundled = fileURLToPath(new URL("./worker.mjs", import.meta.url));
  if (existsSync(bundled)) return bundled;
  return fileURLToPath(new URL("../cli/worker-main.ts", import.meta.url));
}
