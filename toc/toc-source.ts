/**
 * Where a directory source's TOC comes from: the crawl (`--crawler`), or a manifest (`--manifest`), then the filters
 * (`--include`, `--exclude`, `--modified-after`). The run, `--dry-run` and `plan` all take it from here; the run
 * also mirrors a bucket (an s3:// source), whose TOC is its listing.
 */
import fs from "node:fs/promises";
import { ConfigError } from "../core/errors.ts";
import type { ObjectStore } from "../core/object-store.ts";
import { isS3Url, parseS3Url } from "../core/s3-url.ts";
import { type Crawler, type CrawlItem, crawl, listBucket } from "./crawl.ts";
import { manifestToc } from "./manifest.ts";
import { type FilterCounts, filterToc, type TocFilter } from "./toc-filter.ts";

export interface TocSourceOptions extends TocFilter {
  /** How the tree is walked (`auto` when not given). */
  readonly crawler?: Crawler | undefined;
  /** Take the paths from this file instead of walking the tree. */
  readonly manifest?: string | undefined;
}

export function tocSource(
  root: string,
  o: TocSourceOptions | undefined,
  signal?: AbortSignal,
  counts?: FilterCounts,
): AsyncGenerator<CrawlItem> {
  if (!o) return crawl(root, signal);
  const items = o.manifest ? manifestToc(root, o.manifest, signal) : crawl(root, signal, o.crawler);
  return filterToc(items, o, counts);
}

/** Fails early, naming the source, when the run's TOC cannot come from it: a bucket with no store, or no directory. */
export async function checkRunSource(source: string, store: ObjectStore | undefined): Promise<void> {
  if (isS3Url(source)) {
    if (!store) throw new Error(`source ${source} is a bucket, but no S3 client was given`);
    return;
  }
  const root = await fs.stat(source).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(
      `source root ${source} cannot be read (${err.code ?? err.message}): give an existing directory`,
    );
  });
  if (!root.isDirectory())
    throw new ConfigError(`source root ${source} is not a directory: give a directory`);
}

/** The run's TOC: the listing of a bucket mirror's store (an s3:// source), else the directory's TOC source. */
export function runToc(
  source: string,
  store: ObjectStore | undefined,
  o: TocSourceOptions | undefined,
  signal?: AbortSignal,
): AsyncGenerator<CrawlItem> {
  return store && isS3Url(source)
    ? listBucket(store, parseS3Url(source).prefix, signal)
    : tocSource(source, o, signal);
}
