/**
 * The mounted-filesystem target: the target root is a yas3fs mount (or any file system). Files are written in
 * place (never a temporary file and a rename, which yas3fs turns into an S3 copy and delete), and owner, mode
 * and times are set after the file is closed, which is when yas3fs keeps them. Directories get their metadata
 * in the last WRITE stage, after all their children exist.
 *
 * Every path is checked before use: relative, no `..`, and its parent directory resolves inside the root on
 * both sides (so a symlink in the tree can never lead a read or a write outside it).
 */
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Stage, TocEntry } from "../../core/messages.ts";
import { checkTocPath, resolveUnder } from "../../core/toc-path.ts";

export interface EntryOutcome {
  readonly status: "ok" | "failed" | "skipped";
  readonly bytes: number;
  readonly reason?: string;
}

export interface TargetOptions {
  readonly sourceRoot: string;
  readonly targetRoot: string;
  /** Set uid/gid (only possible as root). */
  readonly preserveOwner: boolean;
  /** size: existence, kind and size; attrs: also mode, owner (when preserved) and mtime. */
  readonly validate: "size" | "attrs";
}

const ok = (bytes = 0): EntryOutcome => ({ status: "ok", bytes });
const failed = (reason: string): EntryOutcome => ({ status: "failed", bytes: 0, reason });

export class FsTarget {
  private sourceReal = "";
  private targetReal = "";
  /** Parent directories already proven to resolve inside their root (bounded). */
  private readonly insideCache = new Set<string>();
  private readonly createdDirs = new Set<string>();

  constructor(readonly opts: TargetOptions) {}

  async init(): Promise<void> {
    this.sourceReal = await realDir(this.opts.sourceRoot, "source");
    await fs.mkdir(this.opts.targetRoot, { recursive: true });
    this.targetReal = await realDir(this.opts.targetRoot, "target");
  }

  /** Writes one entry; never throws: every failure is an outcome with a reason. */
  async write(entry: TocEntry, stage: Stage): Promise<EntryOutcome> {
    try {
      const p = await this.paths(entry.path);
      if ("reason" in p) return failed(p.reason);
      if (stage === "dirs" || entry.kind === "dir") return await this.writeDir(p.src, p.dst);
      if (entry.kind === "symlink") return await this.writeSymlink(p.src, p.dst);
      return await this.writeFile(p.src, p.dst);
    } catch (err) {
      return failed(reasonOf(err, "write"));
    }
  }

  /** Checks one entry in the target against the source (and the TOC when the source is gone). */
  async check(entry: TocEntry): Promise<EntryOutcome> {
    try {
      const p = await this.paths(entry.path);
      if ("reason" in p) return failed(p.reason);
      const dst = await lstatOrNull(p.dst);
      if (!dst) return failed("missing in the target");
      const kind = kindOf(dst);
      if (kind !== entry.kind) return failed(`is a ${kind} in the target, expected a ${entry.kind}`);
      const src = await lstatOrNull(p.src);
      const problems: string[] = [];
      if (entry.kind === "file") {
        const want = src ? src.size : BigInt(entry.size);
        if (dst.size !== want)
          problems.push(`size ${dst.size} in the target, ${want} in the ${src ? "source" : "TOC"}`);
      }
      if (entry.kind === "symlink" && src?.isSymbolicLink()) {
        const [a, b] = await Promise.all([fs.readlink(p.src), fs.readlink(p.dst)]);
        if (a !== b) problems.push(`link points to ${JSON.stringify(b)}, expected ${JSON.stringify(a)}`);
      }
      if (this.opts.validate === "attrs" && src && kindOf(src) === entry.kind) {
        if (entry.kind !== "symlink" && (dst.mode & 0o7777n) !== (src.mode & 0o7777n)) {
          problems.push(`mode ${octal(dst.mode)} in the target, ${octal(src.mode)} in the source`);
        }
        if (this.opts.preserveOwner && (dst.uid !== src.uid || dst.gid !== src.gid)) {
          problems.push(`owner ${dst.uid}:${dst.gid} in the target, ${src.uid}:${src.gid} in the source`);
        }
        // Times are set to the microsecond (see nsToSeconds): closer than 1 µs is equal.
        const diff = dst.mtimeNs > src.mtimeNs ? dst.mtimeNs - src.mtimeNs : src.mtimeNs - dst.mtimeNs;
        if (diff >= 1000n)
          problems.push(`mtime ${dst.mtimeNs} ns in the target, ${src.mtimeNs} ns in the source`);
      }
      if (problems.length > 0) return failed(problems.join("; "));
      return ok(entry.kind === "file" ? Number(dst.size) : 0);
    } catch (err) {
      return failed(reasonOf(err, "check"));
    }
  }

  /** Resolves a TOC path on both sides, refusing anything that would leave either root. */
  async paths(rel: string): Promise<{ src: string; dst: string } | { reason: string }> {
    const checked = checkTocPath(rel);
    if (!checked.ok) return { reason: checked.reason };
    const src = resolveUnder(this.opts.sourceRoot, checked.segments);
    const dst = resolveUnder(this.opts.targetRoot, checked.segments);
    if (checked.segments.length > 1) {
      const parent = checked.segments.slice(0, -1);
      if (!(await this.inside(this.opts.sourceRoot, this.sourceReal, parent, false))) {
        return { reason: "refused: a parent directory in the source resolves outside the source root" };
      }
      if (!(await this.inside(this.opts.targetRoot, this.targetReal, parent, true))) {
        return { reason: "refused: a parent directory in the target resolves outside the target root" };
      }
    }
    return { src, dst };
  }

  private async inside(
    root: string,
    realRoot: string,
    parent: string[],
    isTarget: boolean,
  ): Promise<boolean> {
    const dir = resolveUnder(root, parent);
    const key = `${isTarget ? "t" : "s"}${dir}`;
    if (this.insideCache.has(key)) return true;
    let real: string;
    try {
      real = await fs.realpath(dir);
    } catch (err) {
      // A target parent that does not exist yet is created by us, below a checked ancestor.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      if (!isTarget) return true; // the read then fails with ENOENT, which is reported as such
      return parent.length <= 1 ? true : this.inside(root, realRoot, parent.slice(0, -1), true);
    }
    const good = real === realRoot || real.startsWith(`${realRoot}${path.sep}`);
    if (good) {
      if (this.insideCache.size > 50_000) this.insideCache.clear();
      this.insideCache.add(key);
    }
    return good;
  }

  private async writeFile(src: string, dst: string): Promise<EntryOutcome> {
    for (let attempt = 1; ; attempt++) {
      const before = await lstatSource(src);
      if ("reason" in before) return failed(before.reason);
      if (!before.isFile()) return failed(`changed since the crawl: now a ${kindOf(before)} in the source`);
      await this.ensureParent(dst);
      const existing = await lstatOrNull(dst);
      if (existing?.isDirectory()) return failed("a directory of that name exists in the target");
      if (existing && !existing.isFile()) await fs.unlink(dst); // never write through a symlink
      await fs.copyFile(src, dst);
      const after = await lstatSource(src);
      if ("reason" in after) return failed(after.reason);
      if (after.size !== before.size || after.mtimeNs !== before.mtimeNs) {
        if (attempt < 2) continue;
        return failed("changed while being copied (size or mtime moved), twice; not recorded as copied");
      }
      await this.setMeta(dst, before, false);
      return ok(Number(before.size));
    }
  }

  private async writeSymlink(src: string, dst: string): Promise<EntryOutcome> {
    const st = await lstatSource(src);
    if ("reason" in st) return failed(st.reason);
    if (!st.isSymbolicLink()) return failed(`changed since the crawl: now a ${kindOf(st)} in the source`);
    const link = await fs.readlink(src);
    await this.ensureParent(dst);
    const existing = await lstatOrNull(dst);
    if (existing?.isDirectory()) return failed("a directory of that name exists in the target");
    if (existing) await fs.unlink(dst);
    await fs.symlink(link, dst);
    await this.setMeta(dst, st, true);
    return ok();
  }

  private async writeDir(src: string, dst: string): Promise<EntryOutcome> {
    const st = await lstatSource(src);
    if ("reason" in st) return failed(st.reason);
    if (!st.isDirectory()) return failed(`changed since the crawl: now a ${kindOf(st)} in the source`);
    const existing = await lstatOrNull(dst);
    if (existing && !existing.isDirectory())
      return failed(`a ${kindOf(existing)} of that name exists in the target`);
    if (!existing) await fs.mkdir(dst, { recursive: true });
    await this.setMeta(dst, st, false);
    return ok();
  }

  private async ensureParent(dst: string): Promise<void> {
    const dir = path.dirname(dst);
    if (this.createdDirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
    if (this.createdDirs.size > 50_000) this.createdDirs.clear();
    this.createdDirs.add(dir);
  }

  private async setMeta(dst: string, st: BigIntStats, isLink: boolean): Promise<void> {
    if (this.opts.preserveOwner) await fs.lchown(dst, Number(st.uid), Number(st.gid));
    if (!isLink) await fs.chmod(dst, Number(st.mode & 0o7777n));
    const atime = nsToSeconds(st.atimeNs);
    const mtime = nsToSeconds(st.mtimeNs);
    if (isLink) await fs.lutimes(dst, atime, mtime);
    else await fs.utimes(dst, atime, mtime);
  }
}

async function realDir(dir: string, what: string): Promise<string> {
  try {
    const real = await fs.realpath(dir);
    const st = await fs.stat(real);
    if (!st.isDirectory()) throw new Error(`${what} root ${dir} is not a directory`);
    return real;
  } catch (err) {
    if (err instanceof Error && err.message.includes("is not a directory")) throw err;
    throw new Error(`${what} root ${dir} cannot be used: ${(err as NodeJS.ErrnoException).code ?? err}`, {
      cause: err,
    });
  }
}

async function lstatOrNull(p: string): Promise<BigIntStats | null> {
  try {
    return await fs.lstat(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

async function lstatSource(p: string): Promise<BigIntStats | { reason: string }> {
  try {
    return await fs.lstat(p, { bigint: true });
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

function reasonOf(err: unknown, op: "write" | "check"): string {
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

/**
 * Node passes times to the kernel as a double of seconds and truncates them to the microsecond: adding half a
 * microsecond first makes that a rounding, so the time set is within 1 µs of the source's.
 */
function nsToSeconds(exactNs: bigint): number {
  const ns = exactNs + 500n;
  const s = ns / 1_000_000_000n;
  return Number(s) + Number(ns - s * 1_000_000_000n) / 1e9;
}

function octal(mode: bigint): string {
  return `0${(mode & 0o7777n).toString(8)}`;
}
