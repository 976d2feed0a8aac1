/**
 * Walks a source for `plan` and `--dry-run`: the TOC source with its filters, counted into a census, and the
 * estimate. A dry run also writes the TOC files the run would write and packs the batches it would send.
 */
import fs from "node:fs/promises";
import type { ConfigOf } from "../core/config.ts";
import { ConfigError } from "../core/errors.ts";
import { tocFiles } from "../core/run-paths.ts";
import { isS3Url, parseS3Url } from "../core/s3-url.ts";
import { NO_WRITE_OPTIONS, type WriteOptions } from "../core/write-options.ts";
import type { CrawlItem } from "../toc/crawl.ts";
import { defaultLimits, InterleavingBatcher } from "../toc/toc-batcher.ts";
import { TocFileWriter } from "../toc/toc-file.ts";
import type { FilterCounts } from "../toc/toc-filter.ts";
import { type TocSourceOptions, tocSource } from "../toc/toc-source.ts";
import { busiestDirs, takeCensus } from "./census.ts";
import { estimate, scaleWorkload, type Workload } from "./estimate.ts";
import { DEFAULT_PRICES, INSTANCE_TYPES, STORAGE_PRICES } from "./prices.ts";
import type { PlanView } from "./render.ts";
import type { estimateSettings } from "./settings.ts";
import { storageEstimate } from "./storage-estimate.ts";

export interface PlanRunOptions {
  readonly source: string;
  readonly target: string;
  readonly toc?: TocSourceOptions | undefined;
  readonly workers: number;
  readonly targetEmpty: boolean;
  readonly sample?: number | undefined;
  readonly totalEntries?: number | undefined;
  readonly multipartThresholdMb: number;
  readonly partSizeMb: number;
  readonly estimate: ConfigOf<typeof estimateSettings>;
  /** The run's storage class, encryption and tags, which the estimate prices; none: S3's defaults. */
  readonly writes?: WriteOptions | undefined;
  /** A dry run: write the TOC files into this run directory and pack the batches. */
  readonly dispatch?:
    | { readonly runDir: string; readonly batchEntries: number; readonly batchBytes: number }
    | undefined;
}

export async function makePlan(o: PlanRunOptions): Promise<PlanView> {
  if (isS3Url(o.source))
    throw new ConfigError(
      `--source: got ${JSON.stringify(o.source)}; the plan walks a directory, not a bucket`,
    );
  const st = await fs.stat(o.source).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(
      `--source: got ${JSON.stringify(o.source)}; cannot read it (${err.code}): give a directory`,
    );
  });
  if (!st.isDirectory())
    throw new ConfigError(`--source: got ${JSON.stringify(o.source)}; expected a directory`);
  const instance = INSTANCE_TYPES[o.estimate.instanceType];
  const perHour = o.estimate.priceInstancePerHour ?? instance?.perHour;
  if (perHour === undefined)
    throw new ConfigError(
      `--instance-type: got ${JSON.stringify(o.estimate.instanceType)}; it is not in the price table (${Object.keys(INSTANCE_TYPES).join(", ")}): give --price-instance-per-hour too`,
    );
  const s3 = isS3Url(o.target);
  const counts: FilterCounts = { excluded: 0, notIncluded: 0, olderThan: 0 };
  let items: AsyncIterable<CrawlItem> = tocSource(
    o.source,
    o.toc ?? { include: [], exclude: [] },
    undefined,
    counts,
  );
  let dispatched: (() => Promise<{ messages: number; entries: number; tocFile: string }>) | undefined;
  if (o.dispatch) {
    const d = o.dispatch;
    await fs.mkdir(d.runDir, { recursive: true });
    const tap = dispatchTap(items, d.runDir, d.batchEntries, d.batchBytes);
    items = tap.items;
    dispatched = tap.finish;
  }
  const { census, complete, seconds } = await takeCensus(items, {
    keyPrefix: s3 ? parseS3Url(o.target).prefix : "",
    multipartThresholdBytes: o.multipartThresholdMb * 1024 * 1024,
    minPartBytes: o.partSizeMb * 1024 * 1024,
    limit: o.sample,
  });
  const sampled: Workload = {
    entries: census.entries,
    files: census.files,
    dirs: census.dirs,
    symlinks: census.symlinks,
    bytes: census.bytes,
    multipartFiles: census.multipartFiles,
    multipartParts: census.multipartParts,
    smallFiles: census.smallFiles,
    smallBytes: census.smallBytes,
  };
  const scaledTo = !complete && o.totalEntries ? o.totalEntries : undefined;
  const workload = scaledTo ? scaleWorkload(sampled, scaledTo) : sampled;
  const kind = s3 ? "s3" : "mount";
  const fps = o.estimate.filesPerSecPerWorker ?? (kind === "s3" ? 300 : 50);
  const writes = o.writes ?? NO_WRITE_OPTIONS;
  const storageClass = writes.storageClass ?? "STANDARD";
  const input = {
    workload,
    fleet: {
      workers: o.workers,
      instanceType: o.estimate.instanceType,
      instance: { perHour, networkMBps: instance?.networkMBps ?? 97, vcpus: instance?.vcpus ?? 2 },
      volumeGiB: o.estimate.volumeGib,
      filesPerSecPerWorker: fps,
      checksPerSecPerWorker: fps * 2,
      bootSec: o.estimate.bootSec,
    },
    target: { kind, empty: o.targetEmpty },
    prices: {
      ...DEFAULT_PRICES,
      // --price-s3-put-per-1k is STANDARD's; the other classes' PUTs are priced by the class table.
      s3PutPer1k:
        storageClass === "STANDARD" ? o.estimate.priceS3PutPer1k : STORAGE_PRICES[storageClass].putPer1k,
      s3HeadPer1k: o.estimate.priceS3HeadPer1k,
      sqsPerMillion: o.estimate.priceSqsPerMillion,
      dataSyncBasicPerGb: o.estimate.priceDatasyncPerGb,
    },
    sqsRequestsPerEntry: o.estimate.sqsRequestsPerEntry,
    busiestDirs: busiestDirs(census, 1),
  } as const;
  return {
    source: o.source,
    target: o.target,
    census,
    complete,
    walkSec: seconds,
    scaledTo,
    filtered: counts,
    input,
    minPartMiB: o.partSizeMb,
    estimate: estimate(input),
    storage: storageEstimate(workload, {
      storageClass,
      tags: writes.tags.length,
      kms: writes.encryption?.algorithm === "aws:kms",
      customerKey: writes.encryption?.kmsKeyId !== undefined,
    }),
    dispatch: dispatched ? await dispatched() : undefined,
  };
}

/**
 * Writes the TOC files as the run would (files and symlinks, then directories apart) and packs the batches
 * the run would send: full ones; the run also sends a partial batch when the crawl pauses, so it may send more.
 */
function dispatchTap(
  items: AsyncIterable<CrawlItem>,
  runDir: string,
  batchEntries: number,
  batchBytes: number,
) {
  const files = tocFiles(runDir);
  const toc = new TocFileWriter(files.toc);
  const dirs = new TocFileWriter(files.dirs);
  const content = new InterleavingBatcher(defaultLimits(batchEntries, batchBytes));
  const dirBatcher = new InterleavingBatcher(defaultLimits(batchEntries, batchBytes));
  let messages = 0;
  async function* tapped(): AsyncGenerator<CrawlItem> {
    for await (const item of items) {
      if (item.type === "entry") {
        if (item.entry.kind === "dir") {
          await dirs.write(item.entry);
          messages += dirBatcher.add(item.entry).length;
        } else {
          await toc.write(item.entry);
          messages += content.add(item.entry).length;
        }
      }
      yield item;
    }
  }
  return {
    items: tapped(),
    finish: async () => {
      messages += content.flush().length + dirBatcher.flush().length;
      await Promise.all([toc.close(), dirs.close()]);
      return { messages, entries: toc.count + dirs.count, tocFile: toc.file };
    },
  };
}
