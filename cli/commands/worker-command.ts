/**
 * `s3-bucket-loader worker`: signals, config, adapters, `runWorker`, exit code. Nothing else.
 */
import os from "node:os";
import type { CommandModule } from "yargs";
import { makeClients } from "../../core/aws/clients.ts";
import { S3ObjectStore } from "../../core/aws/s3-object-store.ts";
import { SnsTopic, SqsTopicSubscriptions } from "../../core/aws/sns-topic.ts";
import { SqsQueue } from "../../core/aws/sqs-queue.ts";
import { parseConfig, workerSettings } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { createLogger } from "../../core/log.ts";
import { quietLogger } from "../../core/quiet-log.ts";
import { isS3Url, parseS3Url } from "../../core/s3-url.ts";
import { createShutdown } from "../../core/shutdown.ts";
import { runWorker } from "../../worker/run-worker.ts";
import { FsTarget } from "../../worker/targets/fs-target.ts";
import { MirrorTarget } from "../../worker/targets/mirror-target.ts";
import { S3Target } from "../../worker/targets/s3-target.ts";
import type { Target } from "../../worker/targets/target.ts";
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

async function workerMain(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  const config = parseConfig(workerSettings, flags, env);
  // File system calls run on libuv's thread pool (4 threads by default): give it one thread per handler, up
  // to 128, before its first use, so that a slow (network) source is read in parallel.
  process.env.UV_THREADPOOL_SIZE ??= String(Math.min(128, Math.max(4, config.concurrency)));
  const logger = createLogger(config.logFormat, { component: `worker ${config.workerId}` });
  const log = flags.quiet ? quietLogger(logger, config.logFormat) : logger;
  const shutdown = createShutdown({ proc: process, abortAfterMs: 30_000 });
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
    let target: Target;
    if (isS3Url(config.source)) {
      if (!isS3Url(config.target))
        throw new ConfigError("--source s3://… (a bucket mirror) needs an s3:// --target");
      const from = parseS3Url(config.source);
      const to = parseS3Url(config.target);
      target = new MirrorTarget({
        source: new S3ObjectStore(clients.s3, from.bucket),
        sourcePrefix: from.prefix,
        target: new S3ObjectStore(clients.s3, to.bucket),
        targetPrefix: to.prefix,
        multipartThresholdBytes: config.multipartThresholdMb * 1024 * 1024,
        minPartBytes: config.partSizeMb * 1024 * 1024,
        skipUnchanged: !config.targetEmpty,
      });
    } else if (isS3Url(config.target)) {
      if (config.copier === "rsync")
        throw new ConfigError("--copier rsync needs a directory target, not an S3 one");
      const loc = parseS3Url(config.target);
      target = new S3Target({
        sourceRoot: config.source,
        store: new S3ObjectStore(
          clients.s3,
          loc.bucket,
          undefined,
          config.s3Requests === "direct" ? clients.s3Wire : undefined,
        ),
        prefix: loc.prefix,
        multipartThresholdBytes: config.multipartThresholdMb * 1024 * 1024,
        minPartBytes: config.partSizeMb * 1024 * 1024,
        skipUnchanged: !config.targetEmpty,
        largeFiles: 2,
        partsInFlight: 4,
        fsCalls: config.fsCalls,
      });
    } else {
      target = new FsTarget({
        sourceRoot: config.source,
        targetRoot: config.target,
        preserveOwner: process.getuid?.() === 0,
        validate: config.validate,
        fsCalls: config.fsCalls,
        copier: config.copier,
      });
    }
    await target.init();
    if (target instanceof FsTarget)
      log.info(`file system calls: ${target.fsCalls} (--fs-calls ${config.fsCalls})`);
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
        copier: config.copier,
        controlQueueName: `${config.controlQueuePrefix}-w-${config.workerId}`.slice(0, 80),
        reportMs: config.reportMs,
        heartbeatMs: config.heartbeatMs,
        target,
        masterTimeoutMs: config.masterTimeoutSec * 1000,
        beforeValidateCmd: config.beforeValidateCmd,
        notifier: config.yas3fsTopicArn
          ? new Yas3fsNotifier(new SnsTopic(clients.sns, config.yas3fsTopicArn), log, {
              everyMs: 1_000,
              maxPerFlush: 20,
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
