/**
 * A whole load on this machine: the embedded emulator (or the one at `--endpoint-url`), the same topic and
 * queues the deployed stack has, N worker processes, and the master in this process. The programs are the
 * same as on AWS; only the endpoint differs.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type AwsClients, makeClients } from "../core/aws/clients.ts";
import { ensureRunResources, type RunResources } from "../core/aws/resources.ts";
import { S3ObjectStore } from "../core/aws/s3-object-store.ts";
import { SqsQueue } from "../core/aws/sqs-queue.ts";
import { ENV } from "../core/env-names.ts";
import { ConfigError, describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { runDir, workerLog } from "../core/run-paths.ts";
import { isS3Url, parseS3Url } from "../core/s3-url.ts";
import { settingArgs } from "../core/setting.ts";
import type { Shutdown } from "../core/shutdown.ts";
import type { RunReport } from "../master/report.ts";
import type { SyncOptions } from "../master/run-finish.ts";
import { runMaster } from "../master/run-master.ts";
import type { MasterConfig } from "../master/settings.ts";
import { masterOptions, masterPorts } from "../master/wiring.ts";
import type { TocSourceOptions } from "../toc/toc-source.ts";
import { workerSettings } from "../worker/settings.ts";
import { writeOptionsOf } from "../worker/targets/make-target.ts";
import { makeTargetDeleter } from "../worker/targets/target-deleter.ts";
import { EMULATOR_CREDENTIALS, type Emulator, startEmulator } from "./emulator.ts";
import { makeSampleTree } from "./sample-tree.ts";
import type { LocalConfig } from "./settings.ts";
import { sendLaunch, type WorkerLaunch } from "./worker-launch.ts";
import { spawnWorkers } from "./worker-processes.ts";

export interface LocalRun {
  readonly report: RunReport;
  readonly source: string;
  readonly target: string;
  readonly endpoint: string;
  readonly resources: RunResources;
}

export async function runLocal(
  config: LocalConfig,
  log: Logger,
  shutdown: Shutdown,
  /** The TOC source and filters; the manifest and the deletions. */
  run: { readonly toc?: TocSourceOptions; readonly sync?: SyncOptions } = {},
  /** UV_THREADPOOL_SIZE as the user gave it, for the workers; unset, each worker sizes its own. */
  threadPool?: string,
  /** The run's worker processes, started already (`spawnWorkers`); by default they are started here. */
  started?: readonly ChildProcess[],
): Promise<LocalRun> {
  const dir = runDir(config.stateDir, config.runId);
  await fs.mkdir(dir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  let emulator: Emulator | null = null;
  let clients: AwsClients | null = null;
  const workers: ChildProcess[] = [];
  let masterDone = false;
  // Checked before the emulator, queues and master start (the workers, started already, check it again).
  writeOptionsOf(config);
  await checkLocalSource(config.source);
  try {
    // The worker programs load while the emulator starts and the queues are made (loading them is most of a
    // small load's fixed cost); each is handed its settings once they exist.
    workers.push(...(started ?? spawnWorkers(config, threadPool)));
    const fatal = watchWorkers(workers, dir, { shutdown, log, masterDone: () => masterDone });
    let endpoint = config.endpointUrl;
    if (!endpoint) {
      emulator = await startEmulator();
      endpoint = emulator.url;
      log.info(`embedded emulator listening on ${endpoint}`);
    }
    // Our own emulator takes our own keys; any other endpoint gets the SDK's default chain (it may check them).
    const credentials = emulator ? EMULATOR_CREDENTIALS : undefined;
    clients = makeClients({ region: config.region, endpoint, maxSockets: 32, credentials });
    const resources = await prepareQueues(clients, config);

    const source = config.source ?? (await sampleSource(config.sampleFiles, cleanups, log));
    const target = await prepareTarget(config.target, clients, cleanups);
    log.info(`copying ${source} → ${target} with ${config.workers} worker(s) × ${config.concurrency}`);

    handOver(workers, { config, conn: { endpoint, credentials }, resources, source, target });

    const masterConfig = localMasterConfig(config, endpoint, resources, source);
    const ports = masterPorts(clients, masterConfig);
    const s3 = clients.s3;
    const deleter = makeTargetDeleter(target, (bucket) => new S3ObjectStore(s3, bucket));
    const report = await runMaster(
      { ...ports, deleter },
      {
        ...masterOptions(masterConfig, target, log, shutdown),
        toc: run.toc,
        sync: { ...run.sync, target },
        fatal,
      },
    );
    masterDone = true;
    await Promise.all(workers.map((w) => waitExit(w, WORKER_EXIT_TIMEOUT_MS)));
    return { report, source, target, endpoint, resources };
  } finally {
    masterDone = true;
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
    clients?.destroy();
    await emulator?.stop().catch((err) => log.warn(`stopping the emulator: ${describe(err)}`));
    for (const c of cleanups)
      await c().catch((err) => log.warn(`could not remove a generated folder: ${describe(err)}`));
  }
}

/** The run's topic and queues, made when missing, and emptied of an earlier run's messages. */
async function prepareQueues(clients: AwsClients, config: LocalConfig): Promise<RunResources> {
  const resources = await ensureRunResources(clients, config.namePrefix, {
    tocVisibilityTimeoutSec: config.visibilityTimeoutSec,
    maxReceiveCount: 5,
  });
  // Leftovers of an earlier run on the same queues would only be dropped as foreign: clear them first.
  await Promise.all([
    new SqsQueue(clients.sqs, resources.tocQueueUrl).purge(),
    new SqsQueue(clients.sqs, resources.reportQueueUrl).purge(),
  ]);
  return resources;
}

/** A directory source must be one before anything starts (a bucket source is checked by the master). */
async function checkLocalSource(source: string | undefined): Promise<void> {
  if (!source || isS3Url(source)) return;
  const st = await fs.stat(source).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`--source ${source} cannot be read (${err.code}): give an existing directory`);
  });
  if (!st.isDirectory()) throw new ConfigError(`--source ${source} is not a directory: give a directory`);
}

/** What every worker is handed once they exist. */
interface WorkerRun {
  readonly config: LocalConfig;
  readonly conn: { readonly endpoint: string; readonly credentials: typeof EMULATOR_CREDENTIALS | undefined };
  readonly resources: RunResources;
  readonly source: string;
  readonly target: string;
}

/**
 * Watches the run's worker processes. One that exits with a failure while the master still runs is logged with
 * the last lines of its log; the signal returned is aborted once every one has exited (one that exited before
 * it was watched counts too).
 */
function watchWorkers(
  workers: readonly ChildProcess[],
  dir: string,
  o: { readonly shutdown: Shutdown; readonly log: Logger; readonly masterDone: () => boolean },
): AbortSignal {
  const fatal = new AbortController();
  let running = workers.length;
  const exited = async (i: number, code: number | null, signal: NodeJS.Signals | null) => {
    running--;
    if (code !== 0 && !o.shutdown.stop.aborted && !o.masterDone()) {
      const tail = (
        await fs
          .readFile(workerLog(dir, i), "utf8")
          .catch((err) => `(its log cannot be read: ${describe(err)})`)
      )
        .trim()
        .split("\n")
        .slice(-3)
        .join("\n  ");
      o.log.warn(`worker ${i} exited with ${code ?? signal}:\n  ${tail}`);
    }
    if (running === 0) fatal.abort(new Error("every worker process exited"));
  };
  for (const [k, w] of workers.entries()) {
    if (w.exitCode !== null || w.signalCode !== null) void exited(k + 1, w.exitCode, w.signalCode);
    else w.once("exit", (code, signal) => void exited(k + 1, code, signal));
  }
  o.log.info(`worker logs: ${workerLog(dir, "N")}`);
  o.shutdown.abort.addEventListener("abort", () => {
    for (const w of workers) w.kill("SIGKILL");
  });
  return fatal.signal;
}

/** The local master's own limits: its workers start at once, on this machine, against a local endpoint. */
const LOCAL_BEACON_MS = 1_000;
const LOCAL_INIT_TIMEOUT_SEC = 120;
const LOCAL_NO_WORKERS_TIMEOUT_SEC = 120;
const LOCAL_AWS_DOWN_TIMEOUT_SEC = 300;

/** The master's settings for a local run: its queues and topic just made, the rest from the local settings. */
function localMasterConfig(
  config: LocalConfig,
  endpoint: string,
  resources: RunResources,
  source: string,
): MasterConfig {
  return {
    region: config.region,
    endpointUrl: endpoint,
    topicArn: resources.topicArn,
    tocQueueUrl: resources.tocQueueUrl,
    reportQueueUrl: resources.reportQueueUrl,
    deadLetterQueueUrl: resources.deadLetterQueueUrl,
    source,
    target: config.target,
    workers: config.workers,
    runId: config.runId,
    resume: config.resume,
    failfast: config.failfast,
    report: config.report,
    stateDir: config.stateDir,
    batchEntries: config.batchEntries,
    batchBytes: config.batchBytes,
    beaconMs: LOCAL_BEACON_MS,
    initTimeoutSec: LOCAL_INIT_TIMEOUT_SEC,
    workerTimeoutSec: config.workerTimeoutSec,
    noWorkersTimeoutSec: LOCAL_NO_WORKERS_TIMEOUT_SEC,
    stallTimeoutSec: config.stallTimeoutSec,
    awsDownTimeoutSec: LOCAL_AWS_DOWN_TIMEOUT_SEC,
    progressMs: config.progressMs,
    logFormat: config.logFormat,
  };
}

/** A generated sample tree in a temporary folder (removed after the run), when no --source is given. */
async function sampleSource(files: number, cleanups: (() => Promise<void>)[], log: Logger): Promise<string> {
  const source = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-sample-"));
  cleanups.push(() => fs.rm(source, { recursive: true, force: true }));
  const t = Date.now();
  const s = await makeSampleTree(source, { files });
  log.info(
    `generated a sample tree in ${source}: ${s.files} files, ${s.dirs} directories, ${s.symlinks} symlinks, ` +
      `${(s.bytes / 1e6).toFixed(1)} MB in ${((Date.now() - t) / 1000).toFixed(1)} s`,
  );
  return source;
}

/** The target ready to be written: an S3 target's bucket made, or a temporary folder when none is given. */
async function prepareTarget(
  target: string | undefined,
  clients: AwsClients,
  cleanups: (() => Promise<void>)[],
): Promise<string> {
  if (target && isS3Url(target)) {
    await new S3ObjectStore(clients.s3, parseS3Url(target).bucket).ensureBucket();
    return target;
  }
  if (target) return target;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-target-"));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Hands each started worker its settings, now that the endpoint, queues, source and target exist. */
function handOver(workers: readonly ChildProcess[], run: WorkerRun): void {
  const launch = workerLaunch(run);
  for (const w of workers) if (w.stdin) sendLaunch(w.stdin, launch);
}

/** The rest of a worker's settings: its source and target, and its connection to the endpoint and queues. */
function workerLaunch(run: WorkerRun): WorkerLaunch {
  const { config, conn, resources, source, target } = run;
  const args = settingArgs(workerSettings, { source, target });
  const env: Record<string, string> = {
    [ENV.endpointUrl]: conn.endpoint,
    [ENV.region]: config.region,
    [ENV.topicArn]: resources.topicArn,
    [ENV.tocQueueUrl]: resources.tocQueueUrl,
    [ENV.reportQueueUrl]: resources.reportQueueUrl,
  };
  if (conn.credentials) {
    env[ENV.accessKeyId] = conn.credentials.accessKeyId;
    env[ENV.secretAccessKey] = conn.credentials.secretAccessKey;
  }
  return { args, env };
}

/** After the master finished, its workers get this long to exit before SIGTERM, and then this long before SIGKILL. */
const WORKER_EXIT_TIMEOUT_MS = 20_000;
const KILL_AFTER_TERM_MS = 5_000;

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + KILL_AFTER_TERM_MS);
  await exited;
  clearTimeout(timer);
  clearTimeout(killer);
}
