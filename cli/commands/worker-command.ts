/**
 * `s3-bucket-loader worker`: signals, config, adapters, `runWorker`, exit code. Nothing else.
 */
import os from "node:os";
import type { CommandModule } from "yargs";
import { makeClients } from "../../core/aws/clients.ts";
import { ImdsSpotNotices } from "../../core/aws/instance-metadata.ts";
import { SnsTopic, SqsTopicSubscriptions } from "../../core/aws/sns-topic.ts";
import { SqsQueue } from "../../core/aws/sqs-queue.ts";
import { parseConfig } from "../../core/config.ts";
import { createLogger } from "../../core/log.ts";
import { quietLogger } from "../../core/quiet-log.ts";
import { createShutdown } from "../../core/shutdown.ts";
import { runWorker } from "../../worker/run-worker.ts";
import { workerSettings } from "../../worker/settings.ts";
import { makeTarget } from "../../worker/targets/make-target.ts";
import { Yas3fsNotifier } from "../../worker/yas3fs-notifier.ts";
import { yargsOptions } from "../cli-options.ts";

export const workerCommand: CommandModule = {
  command: "worker",
  describe: "run one worker: copy and check the TOC batches of a run",
  builder: (y) => y.options(yargsOptions(workerSettings)),
  handler: async (argv) => {
    process.exitCode = await workerMain(argv, process.env);
  },
};

/** After the first signal, the batches in hand get this long to finish before the work is aborted. */
const DRAIN_TIMEOUT_MS = 30_000;
/** Live yas3fs mounts hear about what was written once a second, in at most this many notes at a time. */
const YAS3FS_NOTIFY_EVERY_MS = 1_000;
const YAS3FS_NOTIFY_MAX_PER_FLUSH = 20;

async function workerMain(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  const config = parseConfig(workerSettings, flags, env);
  // File system calls run on libuv's thread pool (4 threads by default): give it one thread per handler, up
  // to 128, before its first use, so that a slow (network) source is read in parallel.
  process.env.UV_THREADPOOL_SIZE ??= String(Math.min(128, Math.max(4, config.concurrency)));
  const logger = createLogger(config.logFormat, { component: `worker ${config.workerId}` });
  const log = flags.quiet ? quietLogger(logger, config.logFormat) : logger;
  const shutdown = createShutdown({ proc: process, abortAfterMs: DRAIN_TIMEOUT_MS });
  if (config.exitWithParent) {
    process.stdin.on("end", () => shutdown.requestAbort("the parent process is gone"));
    process.stdin.resume();
  }
  const clients = makeClients({
    region: config.region,
    endpoint: config.endpointUrl,
    maxSockets: config.concurrency + 16,
  });
  try {
    const { target, note } = await makeTarget(config, clients);
    if (note) log.info(note);
    const outcome = await runWorker(
      {
        tocQueue: new SqsQueue(clients.sqs, config.tocQueueUrl),
        reportQueue: new SqsQueue(clients.sqs, config.reportQueueUrl),
        subscriptions: new SqsTopicSubscriptions(clients.sqs, clients.sns, config.topicArn),
      },
      {
        workerId: config.workerId,
        host: os.hostname(),
        runId: config.runId,
        concurrency: config.concurrency,
        controlQueueName: `${config.controlQueuePrefix}-w-${config.workerId}`.slice(0, 80),
        reportMs: config.reportMs,
        heartbeatMs: config.heartbeatMs,
        target,
        masterTimeoutMs: config.masterTimeoutSec * 1000,
        spotNotices: config.spotNotice ? new ImdsSpotNotices(config.imdsEndpoint) : undefined,
        spotNoticePollMs: config.spotNoticePollMs,
        interruptionDrainMs: config.spotDrainSec * 1000,
        beforeValidateCmd: config.beforeValidateCmd,
        notifier: config.yas3fsTopicArn
          ? new Yas3fsNotifier(new SnsTopic(clients.sns, config.yas3fsTopicArn), log, {
              everyMs: YAS3FS_NOTIFY_EVERY_MS,
              maxPerFlush: YAS3FS_NOTIFY_MAX_PER_FLUSH,
            })
          : undefined,
        log,
        shutdown,
      },
    );
    const t = outcome.totals;
    log.info(
      `stopped (${outcome.reason}): wrote ${t.WRITE.ok} ok / ${t.WRITE.failed} failed, checked ${t.VALIDATE.ok} ok / ${t.VALIDATE.failed} failed`,
    );
    return shutdown.signals > 0 ? 130 : outcome.exitCode;
  } finally {
    shutdown.dispose();
    clients.destroy();
    if (config.exitWithParent) process.stdin.destroy();
  }
}
