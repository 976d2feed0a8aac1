/**
 * The master's wiring from its parsed settings: the ports over the AWS clients and the run's options. The
 * `master` command and the local run both build their master with these.
 */
import type { AwsClients } from "../core/aws/clients.ts";
import { S3ObjectStore } from "../core/aws/s3-object-store.ts";
import { SnsTopic, SqsTopicSubscriptions } from "../core/aws/sns-topic.ts";
import { SqsQueue } from "../core/aws/sqs-queue.ts";
import type { Logger } from "../core/log.ts";
import { isS3Url, parseS3Url } from "../core/s3-url.ts";
import type { Shutdown } from "../core/shutdown.ts";
import { printProgress } from "./output.ts";
import type { MasterOptions, MasterPorts } from "./run-master.ts";
import type { MasterConfig } from "./settings.ts";

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
    storeFor: (bucket) => new S3ObjectStore(clients.s3, bucket),
  };
}

/** How long the master waits, once the copies are done, for the workers' error reports, and then for their goodbyes. */
const ERROR_REPORT_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 15_000;

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
      errorReportTimeoutMs: ERROR_REPORT_TIMEOUT_MS,
      shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    },
    batchEntries: config.batchEntries,
    batchBytes: config.batchBytes,
    progressMs: config.progressMs,
    log,
    shutdown,
    onProgress: (p) => printProgress(p, log, config.logFormat),
  };
}
