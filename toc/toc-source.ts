/**
 * Where a directory source's TOC comes from: the crawl (`--crawler`), or a manifest (`--manifest`), then the filters
 * (`--include`, `--exclude`, `--modified-after`). The run, `--dry-run` and `plan` all take it from here.
 */
import { type Crawler, type CrawlItem, crawl } from "./crawl.ts";
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
