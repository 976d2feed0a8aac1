/**
 * Walks the source tree as a stream: one directory open at a time per walker, entries yielded as they are
 * found, nothing of the tree kept in memory but the directories still to visit. Symlinks are entries of their
 * own and never followed. What cannot become an entry (special files, names that are not UTF-8, directories
 * that cannot be listed) is yielded as an issue with a reason, never skipped silently.
 */
import { type BigIntStats, lstat as lstatCb } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { EntryKind, PathIssue, TocEntry } from "../core/messages.ts";

export type CrawlItem =
  | { readonly type: "entry"; readonly entry: TocEntry }
  | {
      readonly type: "issue";
      readonly issue: PathIssue;
      readonly outcome: "failed" | "skipped";
      readonly isEntry: boolean;
    };

/** lstat calls in flight per directory. */
const STAT_CHUNK = 128;
/** Directories whose names are read ahead. */
const READ_AHEAD = 8;

/** All names of a directory, as bytes (names need not be UTF-8), or the error. */
function readNames(dir: string): Promise<Buffer[] | Error> {
  return fs.readdir(dir, { encoding: "buffer" }).catch((err: Error) => err);
}

/** Yields the root (as `.`) and every entry under it, depth first. */
export async function* crawl(root: string, signal?: AbortSignal): AsyncGenerator<CrawlItem> {
  const rootStat = await fs.stat(root).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`source root ${root} cannot be read: ${err.code ?? err.message}`, { cause: err });
  });
  if (!rootStat.isDirectory()) throw new Error(`source root ${root} is not a directory`);
  // The root is an entry too: its owner, mode and mtime go to the target root (in S3, the prefix's marker).
  const rootLstat = await fs.lstat(root, { bigint: true });
  yield { type: "entry", entry: { path: ".", kind: "dir", size: 0, mtimeNs: rootLstat.mtimeNs.toString() } };
  const pending: string[] = [""];
  // The names of the next few directories are read ahead (one readdir each, in the thread pool) while the
  // current one is stat-ed: on a network filer every call is a round trip, and they overlap.
  const listings = new Map<string, Promise<Buffer[] | Error>>();
  const absOf = (rel: string) => (rel === "" ? root : path.join(root, rel));
  const readAhead = () => {
    for (let i = pending.length - 1; i >= 0 && listings.size < READ_AHEAD; i--) {
      const rel = pending[i] as string;
      if (!listings.has(rel)) listings.set(rel, readNames(absOf(rel)));
    }
  };
  while (pending.length > 0) {
    signal?.throwIfAborted();
    const rel = pending.pop() as string;
    const abs = absOf(rel);
    const listed = await (listings.get(rel) ?? readNames(abs));
    listings.delete(rel);
    readAhead();
    if (listed instanceof Error) {
      yield {
        type: "issue",
        issue: {
          path: rel || ".",
          reason: `cannot list directory (${errCode(listed)}): its contents were not copied`,
        },
        outcome: "failed",
        isEntry: false,
      };
      continue;
    }
    const subdirs: string[] = [];
    // Each chunk of names is stat-ed in parallel; entries still come out in directory order.
    let chunk: Buffer[] = [];
    const flushChunk = async function* (): AsyncGenerator<CrawlItem> {
      const names = chunk;
      chunk = [];
      const stats = await Promise.all(names.map((raw) => lstatOrError(path.join(abs, raw.toString("utf8")))));
      for (const [n, raw] of names.entries()) {
        const name = raw.toString("utf8");
        const childRel = rel === "" ? name : `${rel}/${name}`;
        const st = stats[n];
        if (!st || st instanceof Error) {
          yield {
            type: "issue",
            issue: { path: childRel, reason: `cannot stat (${errCode(st)}) during the crawl` },
            outcome: "failed",
            isEntry: true,
          };
          continue;
        }
        const kind = kindOf(st);
        if (typeof kind !== "string") {
          yield {
            type: "issue",
            issue: { path: childRel, reason: `special file (${kind.special}): not copied` },
            outcome: "skipped",
            isEntry: true,
          };
          continue;
        }
        if (kind === "dir") subdirs.push(childRel);
        yield {
          type: "entry",
          entry: {
            path: childRel,
            kind,
            size: kind === "dir" ? 0 : Number(st.size),
            mtimeNs: st.mtimeNs.toString(),
          },
        };
      }
    };
    for (const raw of listed) {
      if (!Buffer.from(raw.toString("utf8"), "utf8").equals(raw)) {
        yield {
          type: "issue",
          issue: {
            path: `${rel === "" ? "" : `${rel}/`}${escapeBytes(raw)}`,
            reason: "name is not valid UTF-8 and cannot become an S3 key; rename it to copy it",
          },
          outcome: "failed",
          isEntry: true,
        };
        continue;
      }
      chunk.push(raw);
      if (chunk.length >= STAT_CHUNK) yield* flushChunk();
    }
    yield* flushChunk();
    // Visit subdirectories in name order (reversed onto the stack) so that runs are reproducible.
    subdirs.sort().reverse();
    pending.push(...subdirs);
  }
}

/** lstat through the callback API: half the overhead of the promise API, which counts at a million entries. */
function lstatOrError(p: string): Promise<BigIntStats | Error> {
  return new Promise((resolve) => lstatCb(p, { bigint: true }, (err, st) => resolve(err ?? st)));
}

function kindOf(st: import("node:fs").BigIntStats): EntryKind | { special: string } {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return { special: "fifo" };
  if (st.isSocket()) return { special: "socket" };
  if (st.isCharacterDevice()) return { special: "character device" };
  if (st.isBlockDevice()) return { special: "block device" };
  return { special: "unknown type" };
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

/** Shows a name that is not UTF-8 with its bad bytes as \xNN, so the report can name it. */
function escapeBytes(raw: Buffer): string {
  let out = "";
  for (const b of raw)
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  return out;
}

/**
 * The TOC of a bucket mirror: every object under the prefix, in listing order. Keys ending in `/` are
 * directory markers (the prefix's own marker is the root `.`); everything else is copied as it is.
 */
export async function* listBucket(
  store: import("../core/object-store.ts").ObjectStore,
  prefix: string,
  signal?: AbortSignal,
): AsyncGenerator<CrawlItem> {
  const base = prefix ? `${prefix}/` : "";
  for await (const o of store.list(base, signal)) {
    const rel = o.key.slice(base.length);
    const mtimeNs = (BigInt(o.lastModifiedMs) * 1_000_000n).toString();
    if (rel === "" || (base === "" && rel === ".")) {
      yield { type: "entry", entry: { path: ".", kind: "dir", size: 0, mtimeNs } };
    } else if (rel.endsWith("/")) {
      yield { type: "entry", entry: { path: rel.slice(0, -1), kind: "dir", size: 0, mtimeNs } };
    } else {
      yield { type: "entry", entry: { path: rel, kind: "file", size: o.size, mtimeNs } };
    }
  }
}
