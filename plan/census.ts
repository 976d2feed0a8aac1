/**
 * What a TOC source holds, counted as it streams by: entries by kind, bytes, a size histogram, the entries
 * multipart uploads will take, the directories with the most entries (each one S3 prefix), and the census of
 * what the run will report (special files, names that are not UTF-8, keys over S3's 1,024 bytes, what cannot
 * be read). `addItem` is pure over the census.
 */
import type { CrawlItem } from "../toc/crawl.ts";

import { SMALL_OBJECT_BYTES } from "./prices.ts";

/** Upper bounds (exclusive) of the histogram's buckets, in bytes; the last bucket has no bound. */
export const SIZE_BUCKETS: readonly { readonly label: string; readonly below: number }[] = [
  { label: "empty", below: 1 },
  { label: "< 4 KiB", below: 4 * 1024 },
  { label: "< 64 KiB", below: 64 * 1024 },
  { label: "< 1 MiB", below: 1024 * 1024 },
  { label: "< 8 MiB", below: 8 * 1024 * 1024 },
  { label: "< 128 MiB", below: 128 * 1024 * 1024 },
  { label: "< 1 GiB", below: 1024 ** 3 },
  { label: "< 16 GiB", below: 16 * 1024 ** 3 },
  { label: ">= 16 GiB", below: Number.POSITIVE_INFINITY },
];

export interface Census {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  largestFile: { path: string; size: number } | null;
  /** Files per histogram bucket, and their bytes. */
  histogram: { files: number; bytes: number }[];
  /** Files at or over the multipart threshold, and the upload parts they need. */
  multipartFiles: number;
  multipartParts: number;
  /** Files under 128 KiB and their bytes (IA classes bill each as 128 KiB; see prices.ts). */
  smallFiles: number;
  smallBytes: number;
  specialFiles: string[];
  nonUtf8Names: string[];
  keysTooLong: string[];
  unreadable: string[];
  /** How many of each list there are (the lists keep the first few paths only). */
  counts: { specialFiles: number; nonUtf8Names: number; keysTooLong: number; unreadable: number };
  /** Candidates for the directories with the most entries of their own (see `busiestDirs`). */
  dirTally: DirTally[];
}

/**
 * A directory's entries of its own (files, symlinks, subdirectories; not theirs), as counted by the
 * Space-Saving algorithm: `entries` may overcount by at most `error`, so the directory has at least
 * `entries - error` of them. A bounded tally whatever the number of directories.
 */
export interface DirTally {
  readonly dir: string;
  entries: number;
  error: number;
}

/** Directories tallied: any directory with more than 1/32 of the entries is among them. */
export const TALLIED_DIRS = 32;

export interface CensusOptions {
  /** The S3 key prefix the entries go under (for the 1,024-byte key limit), "" for none. */
  readonly keyPrefix: string;
  readonly multipartThresholdBytes: number;
  readonly minPartBytes: number;
  /** Paths kept per list. */
  readonly keep?: number;
}

export function emptyCensus(): Census {
  return {
    entries: 0,
    files: 0,
    dirs: 0,
    symlinks: 0,
    bytes: 0,
    largestFile: null,
    histogram: SIZE_BUCKETS.map(() => ({ files: 0, bytes: 0 })),
    multipartFiles: 0,
    multipartParts: 0,
    smallFiles: 0,
    smallBytes: 0,
    specialFiles: [],
    nonUtf8Names: [],
    keysTooLong: [],
    unreadable: [],
    counts: { specialFiles: 0, nonUtf8Names: 0, keysTooLong: 0, unreadable: 0 },
    dirTally: [],
  };
}

/** Counts one entry of `dir` (Space-Saving: an untallied directory takes the place of the smallest count). */
export function tallyDir(tally: DirTally[], dir: string, keep: number = TALLIED_DIRS): void {
  const hit = tally.find((t) => t.dir === dir);
  if (hit) {
    hit.entries++;
    return;
  }
  if (tally.length < keep) {
    tally.push({ dir, entries: 1, error: 0 });
    return;
  }
  let min = 0;
  for (let i = 1; i < tally.length; i++) if ((tally[i]?.entries ?? 0) < (tally[min]?.entries ?? 0)) min = i;
  const floor = tally[min]?.entries ?? 0;
  tally[min] = { dir, entries: floor + 1, error: floor };
}

/** The directories with at least `atLeast` entries for sure, the most first (`entries` a lower bound). */
export function busiestDirs(c: Census, atLeast = 1): { dir: string; entries: number }[] {
  return c.dirTally
    .map((t) => ({ dir: t.dir, entries: t.entries - t.error }))
    .filter((t) => t.entries >= atLeast)
    .sort((a, b) => b.entries - a.entries || (a.dir < b.dir ? -1 : 1));
}

/** The parts of a multipart upload: at least `minPartBytes` each, never more than 10,000. */
export function partsOf(size: number, minPartBytes: number): number {
  const part = Math.max(minPartBytes, Math.ceil(size / 10_000 / (1024 * 1024)) * 1024 * 1024);
  return Math.max(1, Math.ceil(size / part));
}

export function addItem(c: Census, item: CrawlItem, o: CensusOptions): void {
  const keep = o.keep ?? 20;
  const note = (list: keyof Census["counts"], p: string) => {
    c.counts[list]++;
    if (c[list].length < keep) c[list].push(p);
  };
  if (item.type === "issue") {
    const r = item.issue.reason;
    if (item.isEntry) c.entries++;
    if (/special file/.test(r)) note("specialFiles", item.issue.path);
    else if (/not valid UTF-8/.test(r)) note("nonUtf8Names", item.issue.path);
    else note("unreadable", `${item.issue.path} (${r})`);
    return;
  }
  const e = item.entry;
  c.entries++;
  if (e.path !== ".") {
    const slash = e.path.lastIndexOf("/");
    tallyDir(c.dirTally, slash < 0 ? "." : e.path.slice(0, slash));
    const key = o.keyPrefix ? `${o.keyPrefix}/${e.path}${e.kind === "dir" ? "/" : ""}` : e.path;
    if (Buffer.byteLength(key, "utf8") > 1024) note("keysTooLong", e.path);
  }
  if (e.kind === "dir") c.dirs++;
  else if (e.kind === "symlink") c.symlinks++;
  else {
    c.files++;
    c.bytes += e.size;
    const b = SIZE_BUCKETS.findIndex((x) => e.size < x.below);
    const bucket = c.histogram[b];
    if (bucket) {
      bucket.files++;
      bucket.bytes += e.size;
    }
    if (!c.largestFile || e.size > c.largestFile.size) c.largestFile = { path: e.path, size: e.size };
    if (e.size < SMALL_OBJECT_BYTES) {
      c.smallFiles++;
      c.smallBytes += e.size;
    }
    if (e.size >= o.multipartThresholdBytes) {
      c.multipartFiles++;
      c.multipartParts += partsOf(e.size, o.minPartBytes);
    }
  }
}

/** Counts a whole TOC source, stopping after `limit` entries when given (a sample). */
export async function takeCensus(
  items: AsyncIterable<CrawlItem>,
  o: CensusOptions & { readonly limit?: number | undefined },
): Promise<{ census: Census; complete: boolean; seconds: number }> {
  const started = performance.now();
  const c = emptyCensus();
  for await (const item of items) {
    addItem(c, item, o);
    if (o.limit !== undefined && c.entries >= o.limit) {
      return { census: c, complete: false, seconds: (performance.now() - started) / 1000 };
    }
  }
  return { census: c, complete: true, seconds: (performance.now() - started) / 1000 };
}
