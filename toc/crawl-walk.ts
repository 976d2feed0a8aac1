/**
 * The walker: the crawl in Node itself, built for sources where every metadata call is a round trip (NFS, EFS,
 * FUSE). One directory open at a time, the names of the next few read ahead, and each directory's entries
 * lstat-ed many at a time in the thread pool, so the round trips overlap. Nothing of the tree is kept in memory
 * but the directories still to visit. Symlinks are entries of their own and never followed.
 *
 * Each directory is opened without following a symlink and checked to be the one its parent's listing showed
 * (device and inode); its names are then read, and its entries lstat-ed, through that open directory
 * (`/proc/self/fd/N` on Linux), so a directory swapped for a symlink meanwhile is never listed.
 */
import { type BigIntStats, constants, existsSync, lstat as lstatCb } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errnoText } from "../core/errors.ts";
import type { EntryKind } from "../core/messages.ts";
import {
  type CrawlItem,
  cannotList,
  cannotStat,
  changedDir,
  entryOf,
  escapeBytes,
  notUtf8,
  rootItem,
  specialFile,
} from "./crawl-item.ts";

/** lstat calls in flight per directory. */
const STAT_CHUNK = 128;
/** Directories whose names are read ahead. */
const READ_AHEAD = 8;

const PROC_FD = existsSync("/proc/self/fd");
const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** A directory to visit: its TOC path, and the device and inode its parent's listing showed. */
interface Pending {
  readonly rel: string;
  readonly dev: bigint;
  readonly ino: bigint;
}

/** A directory opened and checked: where its entries are reached, its names (as bytes: they need not be UTF-8). */
interface Listing {
  readonly base: string;
  readonly names: Buffer[];
  close(): Promise<void>;
}

/** Opens a directory, checks it is the one expected, and reads its names; or the item that says why not. */
async function listDir(abs: string, rel: string, want: Pending): Promise<Listing | CrawlItem> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(abs, O_DIR);
  } catch (err) {
    const code = errnoText(err);
    if (code === "ELOOP") return changedDir(rel, "now a symlink");
    if (code === "ENOTDIR") return changedDir(rel, "no longer a directory");
    return cannotList(rel, code);
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (st.dev !== want.dev || st.ino !== want.ino) {
      await fh.close();
      return changedDir(
        rel,
        `device ${st.dev} inode ${st.ino}, listed as device ${want.dev} inode ${want.ino}`,
      );
    }
    const base = PROC_FD ? `/proc/self/fd/${fh.fd}` : abs;
    const names = await fs.readdir(base, { encoding: "buffer" });
    return { base, names, close: () => fh.close() };
  } catch (err) {
    await fh.close();
    return cannotList(rel, errnoText(err));
  }
}

/** Yields the root (as `.`) and every entry under it, depth first, subdirectories in name order. */
export async function* walk(root: string, signal?: AbortSignal): AsyncGenerator<CrawlItem> {
  const top = await rootItem(root);
  yield top.item;
  const rootSt = await fs.stat(root, { bigint: true });
  // The root may be a symlink to the tree: it is opened by its real path.
  const realRoot = await fs.realpath(root);
  const pending: Pending[] = [{ rel: "", dev: rootSt.dev, ino: rootSt.ino }];
  // The names of the next few directories are read ahead (one readdir each, in the thread pool) while the
  // current one is stat-ed: on a network filer every call is a round trip, and they overlap.
  const listings = new Map<string, Promise<Listing | CrawlItem>>();
  const absOf = (rel: string) => (rel === "" ? realRoot : path.join(root, rel));
  const readAhead = () => {
    for (let i = pending.length - 1; i >= 0 && listings.size < READ_AHEAD; i--) {
      const p = pending[i] as Pending;
      if (!listings.has(p.rel)) listings.set(p.rel, listDir(absOf(p.rel), p.rel || ".", p));
    }
  };
  try {
    while (pending.length > 0) {
      signal?.throwIfAborted();
      const dir = pending.pop() as Pending;
      const listed = await (listings.get(dir.rel) ?? listDir(absOf(dir.rel), dir.rel || ".", dir));
      listings.delete(dir.rel);
      readAhead();
      if ("type" in listed) {
        yield listed;
        continue;
      }
      try {
        yield* entriesOf(dir.rel, listed, top.dev, pending);
      } finally {
        await listed.close();
      }
    }
  } finally {
    // Directories read ahead but not visited (the crawl was stopped): their handles are closed.
    for (const l of listings.values()) {
      const listed = await l;
      if (!("type" in listed)) await listed.close();
    }
  }
}

/** The entries of one listed directory, in its order; its subdirectories go onto `pending`, in name order. */
async function* entriesOf(
  rel: string,
  listed: Listing,
  rootDev: bigint,
  pending: Pending[],
): AsyncGenerator<CrawlItem> {
  {
    const abs = listed.base;
    const subdirs: Pending[] = [];
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
          yield cannotStat(childRel, errnoText(st));
          continue;
        }
        const kind = kindOf(st);
        if (typeof kind !== "string") {
          yield specialFile(childRel, kind.special);
          continue;
        }
        if (kind === "dir") subdirs.push({ rel: childRel, dev: st.dev, ino: st.ino });
        yield { type: "entry", entry: entryOf(childRel, kind, st, rootDev) };
      }
    };
    for (const raw of listed.names) {
      if (!Buffer.from(raw.toString("utf8"), "utf8").equals(raw)) {
        yield notUtf8(`${rel === "" ? "" : `${rel}/`}${escapeBytes(raw)}`);
        continue;
      }
      chunk.push(raw);
      if (chunk.length >= STAT_CHUNK) yield* flushChunk();
    }
    yield* flushChunk();
    // Visit subdirectories in name order (reversed onto the stack) so that runs are reproducible.
    subdirs.sort((a, b) => (a.rel < b.rel ? 1 : a.rel > b.rel ? -1 : 0));
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
