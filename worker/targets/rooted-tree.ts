/**
 * A directory tree that a worker may only use below its root: a checked TOC path is joined under the root, and
 * its parent directory must resolve (through any symlinks) inside the root's real path. Proven parents are
 * cached, so a tree of many files in few directories costs few `realpath` calls.
 */
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errnoOf } from "../../core/errors.ts";
import type { TocEntry } from "../../core/messages.ts";
import { resolveUnder } from "../../core/toc-path.ts";
import { type FsCalls, type SourceHandle, threadCalls } from "./fs-calls.ts";

export class RootedTree {
  private real = "";
  private readonly proven = new Set<string>();

  constructor(
    readonly root: string,
    readonly role: "source" | "target",
  ) {}

  /** How `realpath` is called: the target's choice, once it has made it. */
  calls: FsCalls = threadCalls;

  /** The root's device: a TOC entry without a `dev` of its own is on it. */
  dev = -1n;

  /** Resolves the root (creating a target root that does not exist yet). */
  async init(): Promise<void> {
    if (this.role === "target") await fs.mkdir(this.root, { recursive: true });
    try {
      this.real = await fs.realpath(this.root);
      const st = await fs.stat(this.real, { bigint: true });
      if (!st.isDirectory()) throw new Error("not a directory");
      this.dev = st.dev;
    } catch (err) {
      const why = errnoOf(err) ?? (err as Error).message;
      throw new Error(`${this.role} root ${this.root} cannot be used (${why}): give an existing directory`, {
        cause: err,
      });
    }
  }

  /** The root's real path (resolved in init). */
  get realRoot(): string {
    return this.real;
  }

  /** Where an entry is looked at: its path, but the root by its real path (the root may be a symlink). */
  lookAt(entryPath: string, abs: string): string {
    return entryPath === "." ? this.real : abs;
  }

  /** The absolute path of checked TOC path segments, or why it would leave the root. */
  async resolve(segments: readonly string[]): Promise<string | { reason: string }> {
    const abs = resolveUnder(this.root, segments);
    if (segments.length > 1 && !(await this.inside(segments.slice(0, -1)))) {
      return {
        reason: `refused: a parent directory in the ${this.role} resolves outside the ${this.role} root`,
      };
    }
    return abs;
  }

  private async inside(parent: readonly string[]): Promise<boolean> {
    const dir = resolveUnder(this.root, parent);
    if (this.proven.has(dir)) return true;
    let real: string;
    try {
      real = await this.calls.realpath(dir);
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") throw err;
      // Source: the read then fails with ENOENT and says so. Target: we create it, below a checked ancestor.
      if (this.role === "source" || parent.length <= 1) return true;
      return this.inside(parent.slice(0, -1));
    }
    const good = real === this.real || real.startsWith(`${this.real}${path.sep}`);
    if (good) {
      if (this.proven.size > 50_000) this.proven.clear();
      this.proven.add(dir);
    }
    return good;
  }
}

/** What was opened (or lstat-ed) for an entry, checked to be the entry the crawl saw. */
export interface Opened {
  readonly handle: SourceHandle;
  readonly st: BigIntStats;
}

/**
 * Opens a source file without following a symlink at its last step and checks that the opened file is the one
 * the crawl saw: its type, device and inode. The caller closes the handle.
 */
export async function openChecked(
  tree: RootedTree,
  entry: TocEntry,
  abs: string,
  calls: FsCalls,
): Promise<Opened | { reason: string }> {
  let handle: SourceHandle;
  try {
    handle = await calls.openSource(tree.lookAt(entry.path, abs));
  } catch (err) {
    const code = errnoOf(err);
    // ELOOP: a symlink now (O_NOFOLLOW); ENOTDIR: not a directory now, or a parent no longer one.
    if (code === "ELOOP" || code === "ENOTDIR" || code === "ENXIO") {
      const now = await lstatSource(abs, calls);
      return {
        reason: "reason" in now ? now.reason : `changed during the run: now a ${kindOf(now)} in the source`,
      };
    }
    const r = sourceReason(err);
    if (r) return { reason: r };
    throw err;
  }
  try {
    const st = await handle.stat();
    const problem = identityProblem(entry, st, tree.dev);
    if (problem === null) return { handle, st };
    await handle.close();
    return { reason: problem };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** lstat of a source entry checked to be the one the crawl saw (for symlinks, which cannot be opened). */
export async function lstatChecked(
  tree: RootedTree,
  entry: TocEntry,
  abs: string,
  calls: FsCalls,
): Promise<BigIntStats | { reason: string }> {
  const st = await lstatSource(tree.lookAt(entry.path, abs), calls);
  if ("reason" in st) return st;
  const problem = identityProblem(entry, st, tree.dev);
  return problem === null ? st : { reason: problem };
}

/**
 * Why a stat of a source entry is not the entry the crawl saw, or null: another type, or another file (device
 * and inode) where the TOC carries them. `rootDev` is the device of an entry that carries none.
 */
export function identityProblem(entry: TocEntry, st: BigIntStats, rootDev: bigint): string | null {
  const kind = kindOf(st);
  if (kind !== entry.kind) return `changed during the run: now a ${kind} in the source`;
  if (entry.ino === undefined) return null;
  const dev = entry.dev === undefined ? rootDev : BigInt(entry.dev);
  if (st.ino === BigInt(entry.ino) && st.dev === dev) return null;
  return (
    `changed during the run: the path leads to another ${kind} than the crawl saw ` +
    `(device ${st.dev} inode ${st.ino}, the crawl saw device ${dev} inode ${entry.ino}); not copied`
  );
}

function sourceReason(err: unknown): string | null {
  const code = errnoOf(err);
  if (code === "ENOENT") return "source vanished after the crawl";
  if (code === "EACCES" || code === "EPERM") return "permission denied reading the source";
  return null;
}

/** lstat that turns the expected failures of a source into reasons. */
export async function lstatSource(p: string, calls = threadCalls): Promise<BigIntStats | { reason: string }> {
  try {
    return await calls.lstat(p);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return { reason: "source vanished after the crawl" };
    if (code === "EACCES" || code === "EPERM") return { reason: "permission denied reading the source" };
    throw err;
  }
}

export function kindOf(st: BigIntStats): string {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  return "special file";
}

/** A reason line for an unexpected file system error, naming the call and the path. */
export function reasonOf(err: unknown, op: string): string {
  const e = err as NodeJS.ErrnoException;
  const side = e.path
    ? ` (${e.syscall ?? op} ${e.path.includes("\n") ? JSON.stringify(e.path) : e.path})`
    : "";
  switch (e.code) {
    case "EACCES":
    case "EPERM":
      return `permission denied${side}`;
    case "ENOSPC":
      return `no space left on the target${side}`;
    case "EROFS":
      return `the target is read-only${side}`;
    case "ENOENT":
      return `no such file or directory${side}`;
    case "EIO":
      return `I/O error${side}`;
    default:
      return `${op} failed: ${e.code ?? ""} ${e.message ?? String(err)}`.trim();
  }
}
