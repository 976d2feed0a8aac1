/**
 * `--delete`: what the previous successful run of the same source and target held and this run's TOC no longer
 * has, found from the runs' own records and TOC files (no listing of the target). Memory stays bounded on a big
 * TOC: when the TOC files are large, both runs' paths are first spread over partition files by a hash of the
 * path, and one partition's current paths are held at a time.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { errnoOf } from "../core/errors.ts";
import type { EntryKind, TocEntry } from "../core/messages.ts";
import { RUNS_DIR, tocFiles } from "../core/run-paths.ts";
import { isS3Url } from "../core/s3-url.ts";
import { readTocFile, TocFileWriter } from "../toc/toc-file.ts";
import { readRunRecord } from "./run-record.ts";

export interface GoneEntry {
  readonly path: string;
  readonly kind: EntryKind;
}

/** The run a deletion compares with, or why there is none. */
export type PreviousRun = { readonly runId: string; readonly dir: string } | { readonly none: string };

/** Source and target as the run records keep them: a directory resolved, an s3:// location as given. */
export function locationKey(where: string): string {
  return isS3Url(where) ? where.replace(/\/+$/, "") : path.resolve(where);
}

/**
 * The latest run under `stateDir` other than `runId` whose last attempt succeeded, of the same source and
 * target, with its TOC files still there.
 */
export async function previousRun(
  stateDir: string,
  runId: string,
  source: string,
  target: string,
): Promise<PreviousRun> {
  const runs = path.join(stateDir, RUNS_DIR);
  let names: string[];
  try {
    names = await fs.readdir(runs);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return { none: `no earlier run in ${stateDir}` };
    throw new Error(`the runs in ${runs} cannot be listed: ${(err as Error).message}`, { cause: err });
  }
  let best: { runId: string; dir: string; endedAtMs: number } | null = null;
  for (const name of names) {
    if (name === runId) continue;
    const dir = path.join(runs, name);
    const record = await readRunRecord(dir);
    const last = record?.attempts.at(-1);
    if (!record || last?.outcome !== "succeeded" || last.endedAtMs === undefined) continue;
    if (record.target === undefined || locationKey(record.source) !== locationKey(source)) continue;
    if (locationKey(record.target) !== locationKey(target)) continue;
    if (!(await exists(tocFiles(dir).toc))) continue;
    if (!best || last.endedAtMs > best.endedAtMs)
      best = { runId: record.runId, dir, endedAtMs: last.endedAtMs };
  }
  return best
    ? { runId: best.runId, dir: best.dir }
    : { none: `no earlier successful run of ${source} into ${target} in ${stateDir}` };
}

/** TOC text held at once per partition: above it the paths are spread over partitions first. */
const PARTITION_BYTES = 64 * 1024 * 1024;

/** The entries of `prev`'s TOC files whose paths `cur`'s do not have, in no particular order. */
export async function goneSince(
  prev: { readonly toc: string; readonly dirs: string },
  cur: { readonly toc: string; readonly dirs: string },
  workDir: string,
): Promise<GoneEntry[]> {
  const bytes = (await Promise.all([prev.toc, prev.dirs, cur.toc, cur.dirs].map(sizeOf))).reduce(
    (a, b) => a + b,
  );
  const parts = Math.max(1, Math.ceil(bytes / PARTITION_BYTES));
  if (parts === 1) return missingFrom(both(prev), both(cur));
  const dir = await fs.mkdtemp(path.join(workDir, "delete-"));
  try {
    const spread = async (files: { toc: string; dirs: string }, tag: string) => {
      const writers = Array.from(
        { length: parts },
        (_, i) => new TocFileWriter(path.join(dir, `${tag}-${i}`)),
      );
      try {
        for await (const e of both(files)) await writers[hash(e.path) % parts]?.write(e);
      } finally {
        await Promise.all(writers.map((w) => w.close()));
      }
    };
    await spread(prev, "prev");
    await spread(cur, "cur");
    const gone: GoneEntry[] = [];
    for (let i = 0; i < parts; i++) {
      const part = (tag: string) => readTocFile(path.join(dir, `${tag}-${i}`));
      gone.push(...(await missingFrom(part("prev"), part("cur"))));
    }
    return gone;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function missingFrom(
  prev: AsyncIterable<TocEntry>,
  cur: AsyncIterable<TocEntry>,
): Promise<GoneEntry[]> {
  const now = new Set<string>();
  for await (const e of cur) now.add(e.path);
  const gone: GoneEntry[] = [];
  for await (const e of prev) if (!now.has(e.path)) gone.push({ path: e.path, kind: e.kind });
  return gone;
}

async function* both(files: { readonly toc: string; readonly dirs: string }): AsyncGenerator<TocEntry> {
  yield* readTocFile(files.toc);
  if (await exists(files.dirs)) yield* readTocFile(files.dirs);
}

/** FNV-1a over the path's UTF-16 units: spreads paths evenly, the same for both runs. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return 0;
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return false;
    throw err;
  }
}
