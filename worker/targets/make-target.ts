/**
 * The worker's target from its settings: a bucket mirror (an s3:// source and target), the S3 target (an
 * s3:// target), or a directory (a yas3fs mount, or any file system) written by the `fs` or the rsync copier.
 */
import type { AwsClients } from "../../core/aws/clients.ts";
import { prefixPacedLimiter, S3ObjectStore } from "../../core/aws/s3-object-store.ts";
import { ConfigError } from "../../core/errors.ts";
import {
  defaultPacerTuning,
  PacedRequests,
  PrefixPacer,
  type RequestPacer,
  unpaced,
} from "../../core/prefix-pacer.ts";
import { isThrottle } from "../../core/retry.ts";
import { isS3Url, parseS3Url } from "../../core/s3-url.ts";
import {
  asksAnything,
  type WriteOptions,
  type WriteSettings,
  writeOptionsFrom,
} from "../../core/write-options.ts";
import type { WorkerConfig } from "../settings.ts";
import { FsTarget } from "./fs-target.ts";
import { MirrorTarget } from "./mirror-target.ts";
import { S3Target } from "./s3-target.ts";
import type { Target } from "./target.ts";

const MIB = 1024 * 1024;

export type TargetSettings = Pick<
  WorkerConfig,
  | "source"
  | "target"
  | "copier"
  | "validate"
  | "fsCalls"
  | "s3Requests"
  | "prefixPacing"
  | "prefixRateStep"
  | "targetEmpty"
  | "multipartThresholdMb"
  | "partSizeMb"
  | "storageClass"
  | "allowArchiveClasses"
  | "sse"
  | "sseKmsKeyId"
  | "tag"
  | "tagRunId"
  | "noOverwrite"
> & { readonly runId?: string | undefined };

/** Why a target that is not the direct S3 one cannot take write options. */
const WRITE_OPTIONS_NEED_S3 =
  "--storage-class, --sse, --sse-kms-key-id, --tag, --tag-run-id and --no-overwrite apply to the direct S3 target (--target s3://… from a directory source)";

/**
 * The write options of these settings, checked with the target they go to; a ConfigError when they do not
 * fit (the local run checks them too, before it starts anything).
 */
export function writeOptionsOf(
  config: WriteSettings & {
    readonly source?: string | undefined;
    readonly target?: string | undefined;
    readonly runId?: string | undefined;
  },
): WriteOptions {
  const writes = writeOptionsFrom(config, config.runId);
  const direct = config.target !== undefined && isS3Url(config.target) && !isS3Url(config.source ?? "");
  if (asksAnything(writes) && !direct) {
    throw new ConfigError(
      isS3Url(config.source ?? "")
        ? `${WRITE_OPTIONS_NEED_S3}; a bucket mirror copies its objects as they are`
        : `${WRITE_OPTIONS_NEED_S3}; a directory (a yas3fs mount) is written by yas3fs: encrypt through the bucket's default encryption (the stack's kmsKeyArn context)`,
    );
  }
  return writes;
}

/** The target, initialised, and what to log about how it was set up (a directory's file system calls). */
export async function makeTarget(
  config: TargetSettings,
  clients: Pick<AwsClients, "s3" | "s3Wire">,
): Promise<{ readonly target: Target; readonly note?: string }> {
  const writes = writeOptionsOf(config);
  const pacer = pacerOf(config);
  const limiter = config.prefixPacing === "off" ? undefined : prefixPacedLimiter;
  if (isS3Url(config.source)) {
    if (!isS3Url(config.target))
      throw new ConfigError("--source s3://… (a bucket mirror) needs an s3:// --target");
    const from = parseS3Url(config.source);
    const to = parseS3Url(config.target);
    const target = new MirrorTarget({
      source: new S3ObjectStore(clients.s3, from.bucket, limiter, undefined, pacer),
      sourcePrefix: from.prefix,
      target: new S3ObjectStore(clients.s3, to.bucket, limiter, undefined, pacer),
      targetPrefix: to.prefix,
      multipartThresholdBytes: config.multipartThresholdMb * MIB,
      minPartBytes: config.partSizeMb * MIB,
      skipUnchanged: !config.targetEmpty,
    });
    await target.init();
    return { target };
  }
  if (isS3Url(config.target)) {
    if (config.copier === "rsync")
      throw new ConfigError("--copier rsync needs a directory target, not an S3 one");
    const loc = parseS3Url(config.target);
    const target = new S3Target({
      sourceRoot: config.source,
      store: new S3ObjectStore(
        clients.s3,
        loc.bucket,
        limiter,
        config.s3Requests === "direct" ? clients.s3Wire : undefined,
        pacer,
      ),
      prefix: loc.prefix,
      multipartThresholdBytes: config.multipartThresholdMb * MIB,
      minPartBytes: config.partSizeMb * MIB,
      skipUnchanged: !config.targetEmpty,
      largeFiles: 2,
      partsInFlight: 4,
      fsCalls: config.fsCalls,
      writes,
    });
    await target.init();
    return { target };
  }
  const target = new FsTarget({
    sourceRoot: config.source,
    targetRoot: config.target,
    preserveOwner: process.getuid?.() === 0,
    validate: config.validate,
    fsCalls: config.fsCalls,
    copier: config.copier,
  });
  await target.init();
  return { target, note: `file system calls: ${target.fsCalls} (--fs-calls ${config.fsCalls})` };
}

/** One pacer for all the stores of the worker: a prefix is one lane whatever the store that reaches it. */
function pacerOf(config: Pick<TargetSettings, "prefixPacing" | "prefixRateStep">): RequestPacer {
  if (config.prefixPacing === "off") return unpaced;
  const tuning = { ...defaultPacerTuning, stepPerSec: config.prefixRateStep };
  return new PacedRequests(new PrefixPacer(tuning), isThrottle);
}
