/**
 * A whole load on this machine: the embedded emulator (or the one at `--endpoint-url`), the same topic and
 * queues the deployed stack has, N worker processes, and the master in this process. The programs are the
 * same as on AWS; only the endpoint differs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type AwsClients, makeClients } from "../core/aws/clients.ts";
import { ensureRunResources, type RunResources } from "../core/aws/resources.ts";
import { S3ObjectStore } from "../core/aws/s3-object-store.ts";
import { SqsQueue } from "../core/aws/sqs-queue.ts";
import type { LocalConfig, MasterConfig } from "../core/config.ts";
import { ENV } from "../core/env-names.ts";
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { isS3Url, parseS3Url } from "../core/s3-url.ts";
import type { Shutdown } from "../core/shutdown.ts";
import { masterOptions, masterPorts } from "../master/cli.ts";
import type { RunReport } from "../master/report.ts";
import { runMaster } from "../master/run-master.ts";
import type { TocSourceOptions } from "../master/toc-source.ts";
import { EMULATOR_CREDENTIALS, type Emulator, startEmulator } from "./emulator.ts";
import { makeSampleTree } from "./sample-tree.ts";

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
  toc?: TocSourceOptions,
  /** UV_THREADPOOL_SIZE as the user gave it, for the workers; unset, each worker sizes its own. */
  workerThreadPool?: string,
): Promise<LocalRun> {
  const runDir = path.join(config.stateDir, "runs", config.runId);
  await fs.mkdir(runDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  let emulator: Emulator | null = null;
  let clients: AwsClients | null = null;
  const workers: ChildProcess[] = [];
  let masterDone = false;
  if (config.source && !isS3Url(config.source)) {
    const st = await fs.stat(config.source).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`--source ${config.source} cannot be read (${err.code}): give an existing directory`);
    });
    if (!st.isDirectory()) throw new Error(`--source ${config.source} is not a directory: give a directory`);
  }
  try {
    let endpoint = config.endpointUrl;
    if (!endpoint) {
      emulator = await startEmulator();
      endpoint = emulator.url;
      log.info(`embedded emulator listening on ${endpoint}`);
    }
    // Our own emulator takes our own keys; any other endpoint gets the SDK's default chain (it may check them).
    const credentials = emulator ? EMULATOR_CREDENTIALS : undefined;
    clients = makeClients({ region: config.region, endpoint, maxSockets: 32, credentials });
    const resources = await ensureRunResources(clients, config.namePrefix, {
      tocVisibilityTimeoutSec: config.visibilityTimeoutSec,
      maxReceiveCount: 5,
    });
    // Leftovers of an earlier run on the same queues would only be dropped as foreign: clear them first.
    await Promise.all([
      new SqsQueue(clients.sqs, resources.tocQueueUrl).purge(),
      new SqsQueue(clients.sqs, resources.reportQueueUrl).purge(),
    ]);

    let source = config.source;
    if (!source) {
      source = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-sample-"));
      const dir = source;
      cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
      const t = Date.now();
      const s = await makeSampleTree(source, { files: config.sampleFiles });
      log.info(
        `generated a sample tree in ${source}: ${s.files} files, ${s.dirs} directories, ${s.symlinks} symlinks, ` +
          `${(s.bytes / 1e6).toFixed(1)} MB in ${((Date.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    let target = config.target;
    if (target && isS3Url(target)) {
      await new S3ObjectStore(clients.s3, parseS3Url(target).bucket).ensureBucket();
    } else if (!target) {
      target = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-target-"));
      const dir = target;
      cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    }
    log.info(`copying ${source} → ${target} with ${config.workers} worker(s) × ${config.concurrency}`);

    const fatal = new AbortController();
    let running = config.workers;
    for (let i = 1; i <= config.workers; i++) {
      const w = startWorker(
        i,
        config,
        { endpoint, credentials },
        resources,
        source,
        target,
        runDir,
        workerThreadPool,
      );
      const logFile = path.join(runDir, `worker-${i}.log`);
      w.once("exit", async (code, signal) => {
        running--;
        if (code !== 0 && !shutdown.stop.aborted && !masterDone) {
          const tail = (await fs.readFile(logFile, "utf8").catch(() => ""))
            .trim()
            .split("\n")
            .slice(-3)
            .join("\n  ");
          log.warn(`worker ${i} exited with ${code ?? signal}:\n  ${tail}`);
        }
        if (running === 0) fatal.abort(new Error("every worker process exited"));
      });
      workers.push(w);
    }
    log.info(`worker logs: ${path.join(runDir, "worker-N.log")}`);
    shutdown.abort.addEventListener("abort", () => {
      for (const w of workers) w.kill("SIGKILL");
    });

    const masterConfig: MasterConfig = {
      region: config.region,
      endpointUrl: endpoint,
      topicArn: resources.topicArn,
      tocQueueUrl: resources.tocQueueUrl,
      reportQueueUrl: resources.reportQueueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      source,
      workers: config.workers,
      runId: config.runId,
      resume: config.resume,
      failfast: config.failfast,
      report: config.report,
      stateDir: config.stateDir,
      batchEntries: config.batchEntries,
      batchBytes: config.batchBytes,
      beaconMs: 1_000,
      initTimeoutSec: 120,
      workerTimeoutSec: config.workerTimeoutSec,
      noWorkersTimeoutSec: 120,
      stallTimeoutSec: config.stallTimeoutSec,
      awsDownTimeoutSec: 300,
      progressMs: config.progressMs,
      logFormat: config.logFormat,
    };
    const report = await runMaster(masterPorts(clients, masterConfig), {
      ...masterOptions(masterConfig, target, log, shutdown),
      toc,
      fatal: fatal.signal,
    });
    masterDone = true;
    await Promise.all(workers.map((w) => waitExit(w, 20_000)));
    return { report, source, target, endpoint, resources };
  } finally {
    masterDone = true;
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
    clients?.destroy();
    await emulator?.stop().catch((err) => log.warn(`stopping the emulator: ${describe(err)}`));
    for (const c of cleanups) await c().catch(() => {});
  }
}

function startWorker(
  n: number,
  config: LocalConfig,
  conn: { readonly endpoint: string; readonly credentials: typeof EMULATOR_CREDENTIALS | undefined },
  r: RunResources,
  source: string,
  target: string,
  runDir: string,
  threadPool: string | undefined,
): ChildProcess {
  const script = process.argv[1] ?? "";
  const args = [
    ...process.execArgv,
    script,
    "worker",
    "--source",
    source,
    "--target",
    target,
    "--run-id",
    config.runId,
    "--worker-id",
    `local-${n}-${process.pid}`,
    "--concurrency",
    String(config.concurrency),
    "--copier",
    config.copier,
    "--fs-calls",
    config.fsCalls,
    "--s3-requests",
    config.s3Requests,
    "--validate",
    config.validate,
    "--log-format",
    config.logFormat,
    "--exit-with-parent",
    "--multipart-threshold-mb",
    String(config.multipartThresholdMb),
    "--part-size-mb",
    String(config.partSizeMb),
    ...(config.targetEmpty ? ["--target-empty"] : []),
    ...(config.yas3fsTopicArn ? ["--yas3fs-topic-arn", config.yas3fsTopicArn] : []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ["pipe", "ignore", "pipe"],
    env: {
      ...process.env,
      [ENV.endpointUrl]: conn.endpoint,
      ...(conn.credentials
        ? {
            [ENV.accessKeyId]: conn.credentials.accessKeyId,
            [ENV.secretAccessKey]: conn.credentials.secretAccessKey,
          }
        : {}),
      [ENV.region]: config.region,
      [ENV.topicArn]: r.topicArn,
      [ENV.tocQueueUrl]: r.tocQueueUrl,
      [ENV.reportQueueUrl]: r.reportQueueUrl,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      UV_THREADPOOL_SIZE: threadPool,
    },
  });
  child.stderr?.pipe(createWriteStream(path.join(runDir, `worker-${n}.log`)));
  return child;
}

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
  const killer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 5_000);
  await exited;
  clearTimeout(timer);
  clearTimeout(killer);
}
