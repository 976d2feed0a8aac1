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
import path from "node:path";
import { errnoOf } from "../../core/errors.ts";
import { isRemoteFs } from "../../core/filesystems.ts";
import type { Stage, TocEntry } from "../../core/messages.ts";
import { checkTocPath } from "../../core/toc-path.ts";
import { chooseFsCalls, type FsCalls, type FsCallsSetting, threadCalls, utimesRounding } from "./fs-calls.ts";
import { attrProblems, type MetaRules, sameMeta, sizeProblem, type TargetMeta } from "./meta-compare.ts";
import {
  identityProblem,
  kindOf,
  lstatChecked,
  lstatSource,
  openChecked,
  RootedTree,
  reasonOf,
} from "./rooted-tree.ts";
import { rsyncBatch } from "./rsync-copier.ts";
import { type EntryOutcome, failed, ok, type Target } from "./target.ts";
import { timeProblem, type UtimesRounding, utimesExpected, utimesSeconds } from "./times.ts";

export interface TargetOptions {
  readonly sourceRoot: string;
  readonly targetRoot: string;
  /** Set uid/gid (only possible as root). */
  readonly preserveOwner: boolean;
  /** size: existence, kind and size; attrs: also mode, owner (when preserved) and mtime. */
  readonly validate: "size" | "attrs";
  /** How file system calls are made (see fs-calls.ts); `auto` when not given. */
  readonly fsCalls?: FsCallsSetting;
  /**
   * Who copies in WRITE: this target (`fs`, the default) sets times through Node's `utimes`, `rsync` keeps
   * nanoseconds. VALIDATE expects the times each of them sets.
   */
  readonly copier?: "fs" | "rsync";
}

export class FsTarget implements Target {
  private readonly source: RootedTree;
  private readonly target: RootedTree;
  /** Target directories known to exist, with the group a file created in them gets. */
  private readonly createdDirs = new Map<string, bigint>();
  private readonly euid = BigInt(process.geteuid?.() ?? -1);
  private readonly egid = BigInt(process.getegid?.() ?? -1);
  private calls: FsCalls = threadCalls;
  private rounding: UtimesRounding = "either";
  /** A local target keeps the times set to the nanosecond; a network or FUSE one (yas3fs: a double) may not. */
  private exactTimes = false;
  /** With the rsync copier, WRITE goes by batch: one rsync for a whole TOC batch (rsync-copier.ts). */
  readonly writeBatch: Target["writeBatch"];

  constructor(readonly opts: TargetOptions) {
    this.source = new RootedTree(opts.sourceRoot, "source");
    this.target = new RootedTree(opts.targetRoot, "target");
    this.writeBatch =
      opts.copier === "rsync"
        ? (entries, stage, signal) => rsyncBatch(this, entries, stage, signal)
        : undefined;
  }

  get description(): string {
    return this.opts.targetRoot;
  }

  /** How this target makes its file system calls: `direct` or `threads` (known after init). */
  get fsCalls(): "direct" | "threads" {
    return this.calls.direct ? "direct" : "threads";
  }

  async init(): Promise<void> {
    await this.source.init();
    await this.target.init();
    // Both roots exist now: their filesystems decide.
    this.calls = chooseFsCalls(this.opts.fsCalls ?? "auto", this.opts.sourceRoot, this.opts.targetRoot);
    this.source.calls = this.calls;
    this.target.calls = this.calls;
    this.rounding = utimesRounding();
    this.exactTimes = !isRemoteFs(this.opts.targetRoot);
  }

  /** How times are set and compared: the rounding of `utimes` measured here, and whether they are exact. */
  get times(): { readonly rounding: UtimesRounding; readonly exact: boolean } {
    return { rounding: this.rounding, exact: this.exactTimes };
  }

  /** Writes one entry; never throws: every failure is an outcome with a reason. */
  async write(entry: TocEntry, stage: Stage): Promise<EntryOutcome> {
    await this.calls.breathe();
    try {
      const p = await this.paths(entry.path);
      if ("reason" in p) return failed(p.reason);
      if (stage === "dirs" || entry.kind === "dir") return await this.writeDir(entry, p.src, p.dst);
      if (entry.kind === "symlink") return await this.writeSymlink(entry, p.src, p.dst);
      return await this.writeFile(entry, p.src, p.dst);
    } catch (err) {
      return failed(reasonOf(err, "write"));
    }
  }

  /** Checks one entry in the target against the source (and the TOC when the source is gone). */
  async check(entry: TocEntry): Promise<EntryOutcome> {
    await this.calls.breathe();
    try {
      const p = await this.paths(entry.path);
      if ("reason" in p) return failed(p.reason);
      const dst = await this.calls.lstatOrNull(p.dst);
      if (!dst) return failed("missing in the target");
      const kind = kindOf(dst);
      if (kind !== entry.kind) return failed(`is a ${kind} in the target, expected a ${entry.kind}`);
      const src = await this.calls.lstatOrNull(this.source.lookAt(entry.path, p.src));
      // What is at the source path now must still be the entry the crawl saw (and that was copied).
      const moved = src && identityProblem(entry, src, this.source.dev);
      if (moved) return failed(moved);
      const problems: string[] = [];
      if (entry.kind === "file") {
        const size = sizeProblem(dst.size, src ? src.size : entry.size, TARGET_AT, src ? "source" : "TOC");
        if (size) problems.push(size);
      }
      if (entry.kind === "symlink" && src?.isSymbolicLink()) {
        const [a, b] = [await this.calls.readlink(p.src), await this.calls.readlink(p.dst)];
        if (a !== b) problems.push(`link points to ${JSON.stringify(b)}, expected ${JSON.stringify(a)}`);
      }
      if (this.opts.validate === "attrs" && src && kindOf(src) === entry.kind)
        problems.push(...attrProblems(fsMeta(dst), src, entry.kind === "symlink", this.metaRules));
      if (problems.length > 0) return failed(problems.join("; "));
      return ok(entry.kind === "file" ? Number(dst.size) : 0);
    } catch (err) {
      return failed(reasonOf(err, "check"));
    }
  }

  /**
   * Why what the source path leads to now is not the entry the crawl saw (its type, device and inode, by
   * lstat), or null. For copiers that read by path (rsync).
   */
  async sourceMoved(entry: TocEntry, src: string): Promise<string | null> {
    const st = await lstatSource(this.source.lookAt(entry.path, src), this.calls);
    if ("reason" in st) return st.reason;
    return identityProblem(entry, st, this.source.dev);
  }

  /** Removes what a copier wrote for an entry that turned out not to be the one crawled. */
  async removeCopy(dst: string): Promise<void> {
    const st = await this.calls.lstatOrNull(dst);
    if (st && !st.isDirectory()) await this.calls.unlink(dst);
  }

  /** Resolves a TOC path on both sides, refusing anything that would leave either root. */
  async paths(rel: string): Promise<{ src: string; dst: string } | { reason: string }> {
    const checked = checkTocPath(rel);
    if (!checked.ok) return { reason: checked.reason };
    const src = await this.source.resolve(checked.segments);
    if (typeof src !== "string") return src;
    const dst = await this.target.resolve(checked.segments);
    if (typeof dst !== "string") return dst;
    return { src, dst };
  }

  private async writeFile(entry: TocEntry, src: string, dst: string): Promise<EntryOutcome> {
    for (let attempt = 1; ; attempt++) {
      // The file is opened without following a symlink, checked to be the one crawled, and copied from that
      // open file: a path swapped meanwhile (a directory made a symlink to elsewhere) is never read.
      const opened = await openChecked(this.source, entry, src, this.calls);
      if ("reason" in opened) return failed(opened.reason);
      const { handle, st: before } = opened;
      let after: BigIntStats;
      try {
        await this.ensureParent(dst);
        // Into a new target, the copy refuses to replace anything: one call, no lstat of the target first.
        // Only when something is there already is it looked at (a re-run, a resumed run, a redelivered batch).
        let copied = true;
        try {
          await this.calls.copyOpened(handle, dst, true);
        } catch (err) {
          if (errnoOf(err) !== "EEXIST") throw err;
          copied = false;
        }
        if (!copied) {
          const existing = await this.calls.lstatOrNull(dst);
          if (existing?.isDirectory()) return failed("a directory of that name exists in the target");
          if (existing && !existing.isFile()) await this.calls.unlink(dst); // never write through a symlink
          // The quick check rsync makes too: the same size, mtime, mode and owner is not copied again.
          if (existing?.isFile() && sameMeta(fsMeta(existing), before, false, this.metaRules)) {
            return { status: "unchanged", bytes: 0 };
          }
          await this.calls.copyOpened(handle, dst, false);
        }
        after = await handle.stat();
        if (after.size !== before.size || after.mtimeNs !== before.mtimeNs) {
          if (attempt < 2) continue;
          return failed("changed while being copied (size or mtime moved), twice; not recorded as copied");
        }
        // A file this copy created on a local disk already has the source's mode (the copy sets it) and our
        // owner: what is the same is not set again.
        await this.setMeta(
          dst,
          before,
          false,
          copied && this.calls.direct ? this.createdDirs.get(path.dirname(dst)) : undefined,
        );
      } finally {
        await handle.close();
      }
      return ok(Number(before.size));
    }
  }

  /** Mode (except for symlinks), owner (when kept) and mtime (as the copier sets it), as meta-compare.ts compares. */
  private get metaRules(): MetaRules<bigint> {
    return {
      at: TARGET_AT,
      mode: "permissions",
      owner: this.opts.preserveOwner,
      mtime: (dstNs, srcNs) => {
        const t = this.mtimeProblem(dstNs, srcNs);
        return t && `mtime in the target: ${t}`;
      },
    };
  }

  /**
   * Why the target's mtime is not what the copy sets from the source's, or null. Always the same second; on a
   * local target exactly the time the copier sets (rsync: the source's; `fs`: the largest not later that
   * `utimes` can set), elsewhere within 1 µs (yas3fs keeps a double).
   */
  private mtimeProblem(dstNs: bigint, srcNs: bigint): string | null {
    if (!this.exactTimes) return timeProblem(dstNs, srcNs, { slackNs: 1000n });
    const exact = this.opts.copier === "rsync" ? srcNs : utimesExpected(srcNs, this.rounding);
    return timeProblem(dstNs, srcNs, { exact, slackNs: 0n });
  }

  private async writeSymlink(entry: TocEntry, src: string, dst: string): Promise<EntryOutcome> {
    // A symlink cannot be opened: it is lstat-ed before and after its text is read, the same link both times.
    const st = await lstatChecked(this.source, entry, src, this.calls);
    if ("reason" in st) return failed(st.reason);
    const link = await this.calls.readlink(src);
    const again = await lstatChecked(this.source, entry, src, this.calls);
    if ("reason" in again) return failed(again.reason);
    await this.ensureParent(dst);
    const existing = await this.calls.lstatOrNull(dst);
    if (existing?.isDirectory()) return failed("a directory of that name exists in the target");
    // Idempotent: a redelivered batch must not recreate the link (that would touch its directory's mtime).
    const same = existing?.isSymbolicLink() && (await this.calls.readlink(dst)) === link;
    if (same && existing && attrProblems(fsMeta(existing), st, true, this.metaRules).length === 0)
      return { status: "unchanged", bytes: 0 };
    if (!same) {
      if (existing) await this.calls.unlink(dst);
      await this.calls.symlink(link, dst);
    }
    await this.setMeta(dst, st, true);
    return ok();
  }

  private async writeDir(entry: TocEntry, src: string, dst: string): Promise<EntryOutcome> {
    // Only its metadata is copied (a directory without read permission too): checked by lstat.
    const st = await lstatChecked(this.source, { ...entry, kind: "dir" }, src, this.calls);
    if ("reason" in st) return failed(st.reason);
    const existing = await this.calls.lstatOrNull(dst);
    if (existing && !existing.isDirectory())
      return failed(`a ${kindOf(existing)} of that name exists in the target`);
    if (!existing) {
      // Creating it changed its parent's mtime, which another handler may have set already; and when directories
      // above it were missing too (an empty directory whose parent's entry has not come yet), each one made
      // changed the mtime of the one above it: set them all again. Handlers converge on the source's times, in
      // whichever order they run.
      const first = (await this.calls.mkdirp(dst)) ?? dst;
      let [s, d] = [src, dst];
      while (d !== this.opts.targetRoot && d.length >= first.length) {
        [s, d] = [path.dirname(s), path.dirname(d)];
        await this.restoreTimes(s, d);
      }
    }
    await this.setMeta(dst, st, false);
    return ok();
  }

  private async restoreTimes(srcDir: string, dstDir: string): Promise<void> {
    const st = await this.calls.lstat(srcDir);
    await this.calls.utimes(
      dstDir,
      utimesSeconds(st.atimeNs, this.rounding),
      utimesSeconds(st.mtimeNs, this.rounding),
    );
  }

  private async ensureParent(dst: string): Promise<void> {
    const dir = path.dirname(dst);
    if (this.createdDirs.has(dir)) return;
    await this.calls.mkdirp(dir);
    // A new file takes the directory's group when the directory is set-group-ID, else ours.
    const d = await this.calls.lstat(dir);
    if (this.createdDirs.size > 50_000) this.createdDirs.clear();
    this.createdDirs.set(dir, d.mode & 0o2000n ? d.gid : this.egid);
  }

  /**
   * Owner, mode and times from the source. `newFileGid`: the file was just created by a copy that set its mode,
   * owned by us and this group; then the owner is set only if it differs, and the mode only when it has set-ID
   * bits (which the copy's own write cleared).
   */
  private async setMeta(dst: string, st: BigIntStats, isLink: boolean, newFileGid?: bigint): Promise<void> {
    const ownerSame = newFileGid !== undefined && st.uid === this.euid && st.gid === newFileGid;
    const chowned = this.opts.preserveOwner && !ownerSame;
    if (chowned) await this.calls.lchown(dst, Number(st.uid), Number(st.gid));
    // Writing the data (after the copy set the mode) and setting the owner both clear set-ID bits.
    const modeSet = newFileGid !== undefined && (st.mode & 0o6000n) === 0n;
    if (!isLink && !modeSet) await this.calls.chmod(dst, Number(st.mode & 0o7777n));
    const atime = utimesSeconds(st.atimeNs, this.rounding);
    const mtime = utimesSeconds(st.mtimeNs, this.rounding);
    if (isLink) await this.calls.lutimes(dst, atime, mtime);
    else await this.calls.utimes(dst, atime, mtime);
  }
}

const TARGET_AT = "in the target";

const fsMeta = (st: BigIntStats): TargetMeta<bigint> => ({
  mode: st.mode,
  uid: st.uid,
  gid: st.gid,
  size: st.size,
  mtime: st.mtimeNs,
});
