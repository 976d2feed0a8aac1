/**
 * `s3-bucket-loader master`: signals, config, adapters, `runMaster`, report, exit code.
 */
import type { CommandModule } from "yargs";
import type { AwsClients } from "../../core/aws/clients.ts";
import { makeClients } from "../../core/aws/clients.ts";
import { S3ObjectStore } from "../../core/aws/s3-object-store.ts";
import { SnsTopic, SqsTopicSubscriptions } from "../../core/aws/sns-topic.ts";
import { SqsQueue } from "../../core/aws/sqs-queue.ts";
import { type MasterConfig, parseConfig } from "../../core/config.ts";
import type { Logger } from "../../core/log.ts";
import { isS3Url, parseS3Url } from "../../core/s3-url.ts";
import { createShutdown, type Shutdown } from "../../core/shutdown.ts";
import { withDeployment } from "../../master/fleet-deployment.ts";
import { masterCliSettings } from "../../master/fleet-settings.ts";
import { boundHeapGrowth } from "../../master/heap-growth.ts";
import { createRunConsole, printProgress, printSummary, writeReport } from "../../master/output.ts";
import { exitCodeOf } from "../../master/report.ts";
import { type MasterOptions, type MasterPorts, runMaster } from "../../master/run-master.ts";
import { dryRun } from "../../plan/dry-run.ts";
import { yargsOptions } from "../cli-options.ts";
import { runExtraOptions, runExtraSettings, tocOptions, writeHtmlReport } from "../run-extras.ts";
import { runMasterOnFleet } from "./run-master-on-fleet.ts";

export const masterCommand: CommandModule = {
  command: "master",
  describe:
    "run the master of a load against existing resources, or a deployed stack (--stack) and its workers (--launch)",
  builder: (y) => y.options(yargsOptions({ ...masterCliSettings, ...runExtraOptions })),
  handler: async (argv) => {
    process.exitCode = await masterMain(argv, process.env);
  },
};

async function masterMain(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  // The crawl stats many files at once (a round trip each on a network filer): more threads than libuv's 4,
  // set before the thread pool's first use.
  process.env.UV_THREADPOOL_SIZE ??= "32";
  // The master in this process: a peak that stays flat however large the TOC (see heap-growth.ts).
  boundHeapGrowth();
  const config = parseConfig(masterCliSettings, await withDeployment(flags, env), env);
  const x = parseConfig(runExtraSettings, flags, env);
  if (x.dryRun)
    return dryRun({
      ...config,
      target: undefined,
      toc: tocOptions(x),
      estimate: x,
      json: config.logFormat === "json",
    });
  const log = createRunConsole({
    ...config,
    format: config.logFormat,
    quiet: x.quiet,
    component: "master",
    expectedWorkers: config.workers,
  });
  const shutdown = createShutdown({ proc: process });
  const clients = makeClients({ region: config.region, endpoint: config.endpointUrl, maxSockets: 32 });
  try {
    const ports = masterPorts(clients, config);
    const options = { ...masterOptions(config, "(the workers' target)", log, shutdown), toc: tocOptions(x) };
    const report = config.launch
      ? await runMasterOnFleet(config, ports, options)
      : await runMaster(ports, options);
    if (!report) return shutdown.stop.aborted ? 130 : 1;
    const full = log.finish(report);
    if (config.report) await writeReport(config.report, full);
    if (x.reportHtml) await writeHtmlReport(x.reportHtml, full);
    printSummary(full, log, config.report);
    return exitCodeOf(report.outcome);
  } finally {
    shutdown.dispose();
    clients.destroy();
  }
}

export function masterPorts(
  clients: AwsClients,
  c: Pick<MasterConfig, "topicArn" | "tocQueueUrl" | "reportQueueUrl" | "deadLetterQueueUrl" | "source">,
): MasterPorts {
  const tocQueue = new SqsQueue(clients.sqs, c.tocQueueUrl);
  return {
    sourceStore: isS3Url(c.source) ? new S3ObjectStore(clients.s3, parseS3Url(c.source).bucket) : undefined,
    topic: new SnsTopic(clients.sns, c.topicArn),
    tocQueue,
    reportQueue: new SqsQueue(clients.sqs, c.reportQueueUrl),
    deadLetterQueue: c.deadLetterQueueUrl ? new SqsQueue(clients.sqs, c.deadLetterQueueUrl) : undefined,
    // Without the setting the master still reads the dead-letter queue: the TOC queue's RedrivePolicy names it.
    findDeadLetterQueue: async (signal) => {
      const url = await tocQueue.deadLetterQueueUrl(signal);
      return url ? new SqsQueue(clients.sqs, url) : null;
    },
    subscriptions: new SqsTopicSubscriptions(clients.sqs, clients.sns, c.topicArn),
  };
}

export function masterOptions(
  config: MasterConfig,
  target: string,
  log: Logger,
  shutdown: Shutdown,
): MasterOptions {
  return {
    runId: config.runId,
    source: config.source,
    resume: config.resume,
    target,
    stateDir: config.stateDir,
    awsDownTimeoutMs: config.awsDownTimeoutSec * 1000,
    settings: {
      expectedWorkers: config.workers,
      failfast: config.failfast,
      beaconMs: config.beaconMs,
      initTimeoutMs: config.initTimeoutSec * 1000,
      workerTimeoutMs: config.workerTimeoutSec * 1000,
      noWorkersTimeoutMs: config.noWorkersTimeoutSec * 1000,
      stallTimeoutMs: config.stallTimeoutSec * 1000,
      errorReportTimeoutMs: 30_000,
      shutdownTimeoutMs: 15_000,
    },
    batchEntries: config.batchEntries,
    batchBytes: config.batchBytes,
    progressMs: config.progressMs,
    log,
    shutdown,
    onProgress: (p) => printProgress(p, log, config.logFormat),
  };
}
