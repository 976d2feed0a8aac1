/**
 * A directory tree that a worker may only use below its root: a checked TOC path is joined under the root, and
 * its parent directory must resolve (through any symlinks) inside the root's real path. Proven parents are
 * cached, so a tree of many files in few directories costs few `realpath` calls.
 */
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { resolveUnder } from "../../core/toc-path.ts";
import { type FsCalls, threadCalls } from "./fs-calls.ts";

export class RootedTree {
  private real = "";
  private readonly proven = new Set<string>();

  constructor(
    readonly root: string,
    readonly role: "source" | "target",
  ) {}

  /** How `realpath` is called: the target's choice, once it has made it. */
  calls: FsCalls = threadCalls;

  /** Resolves the root (creating a target root that does not exist yet). */
  async init(): Promise<void> {
    if (this.role === "target") await fs.mkdir(this.root, { recursive: true });
    try {
      this.real = await fs.realpath(this.root);
      if (!(await fs.stat(this.real)).isDirectory()) throw new Error("not a directory");
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(`${this.role} root ${this.root} cannot be used (${why}): give an existing directory`, {
        cause: err,
      });
    }
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
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
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

/** lstat that turns the expected failures of a source into reasons. */
export async function lstatSource(p: string, calls = threadCalls): Promise<BigIntStats | { reason: string }> {
  try {
    return await calls.lstat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
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
