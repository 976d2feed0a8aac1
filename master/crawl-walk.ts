/**
 * The walker: the crawl in Node itself, built for sources where every metadata call is a round trip (NFS, EFS,
 * FUSE). One directory open at a time, the names of the next few read ahead, and each directory's entries
 * lstat-ed many at a time in the thread pool, so the round trips overlap. Nothing of the tree is kept in memory
 * but the directories still to visit. Symlinks are entries of their own and never followed.
 */
import { type BigIntStats, lstat as lstatCb } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { EntryKind } from "../core/messages.ts";
import {
  type CrawlItem,
  cannotList,
  cannotStat,
  errCode,
  escapeBytes,
  notUtf8,
  rootItem,
  specialFile,
} from "./crawl-item.ts";

/** lstat calls in flight per directory. */
const STAT_CHUNK = 128;
/** Directories whose names are read ahead. */
const READ_AHEAD = 8;

/** All names of a directory, as bytes (names need not be UTF-8), or the error. */
function readNames(dir: string): Promise<Buffer[] | Error> {
  return fs.readdir(dir, { encoding: "buffer" }).catch((err: Error) => err);
}

/** Yields the root (as `.`) and every entry under it, depth first, subdirectories in name order. */
export async function* walk(root: string, signal?: AbortSignal): AsyncGenerator<CrawlItem> {
  yield await rootItem(root);
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
      yield cannotList(rel, errCode(listed));
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
          yield cannotStat(childRel, errCode(st));
          continue;
        }
        const kind = kindOf(st);
        if (typeof kind !== "string") {
          yield specialFile(childRel, kind.special);
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
        yield notUtf8(`${rel === "" ? "" : `${rel}/`}${escapeBytes(raw)}`);
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

function kindOf(st: BigIntStats): EntryKind | { special: string } {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return { special: "fifo" };
  if (st.isSocket()) return { special: "socket" };
  if (st.isCharacterDevice()) return { special: "character device" };
  if (st.isBlockDevice()) return { special: "block device" };
  return { special: "unknown type" };
}
