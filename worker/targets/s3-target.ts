/**
 * The direct S3 target: each entry becomes the object yas3fs would have written for it (see yas3fs-format.ts),
 * in one request for small files, in a multipart upload for large ones. Each file is read once; its CRC32 is
 * computed while reading and sent with the upload, so S3 refuses a body that does not match. The file is
 * stat-ed again after reading: if it moved meanwhile it is read again once, then reported, never recorded good.
 *
 * Re-runs copy nothing that is already there and unchanged (same type, mode, owner, mtime and size in `attr`,
 * by meta-compare.ts, and a stored checksum, and stored as the write options ask): those entries come back
 * `unchanged`. With never-overwrite an object that is there and differs is reported, never replaced, whether
 * the HEAD before the write or S3's 412 to the write finds it.
 */
import { type BigIntStats, constants } from "node:fs";
import fs from "node:fs/promises";
import { Crc32, compositeCrc32, crc32Base64 } from "../../core/checksum.ts";
import { describe, errnoOf } from "../../core/errors.ts";
import { Limiter } from "../../core/limiter.ts";
import type { Stage, TocEntry } from "../../core/messages.ts";
import type { ObjectHead, ObjectStore, WriteResult } from "../../core/object-store.ts";
import { checkTocPath } from "../../core/toc-path.ts";
import {
  ARCHIVE_CLASSES,
  NO_WRITE_OPTIONS,
  storedAsProblems,
  type WriteOptions,
} from "../../core/write-options.ts";
import {
  chooseFsCalls,
  type FsCalls,
  type FsCallsSetting,
  type SourceHandle,
  threadCalls,
} from "./fs-calls.ts";
import {
  type MetaRules,
  metaProblems,
  type SourceMeta,
  sizeProblem,
  type TargetMeta,
} from "./meta-compare.ts";
import {
  identityProblem,
  lstatChecked,
  lstatSource,
  openChecked,
  RootedTree,
  reasonOf,
} from "./rooted-tree.ts";
import { type EntryOutcome, failed, ok, type Target } from "./target.ts";
import { attrSeconds, exactSeconds, splitNs } from "./times.ts";
import {
  attrJson,
  contentTypeFor,
  keyOf,
  MAX_KEY_BYTES,
  type ParsedAttr,
  parseAttr,
} from "./yas3fs-format.ts";

/** Our record of the CRC32 of a single-PUT body as read from the source (multipart objects carry theirs). */
export const CRC_METADATA_KEY = "s3bl-crc32";
/** The part size of a multipart object, to recompute its checksum from the source in VALIDATE. */
export const PART_SIZE_METADATA_KEY = "s3bl-part-size";

export interface S3TargetOptions {
  readonly sourceRoot: string;
  readonly store: ObjectStore;
  /** Key prefix, without slashes at either end ("" for the bucket's root). */
  readonly prefix: string;
  /** Files of this size or more go up in parts. */
  readonly multipartThresholdBytes: number;
  /** Smallest part size; larger files get larger parts, so that no file needs over 10,000 parts. */
  readonly minPartBytes: number;
  /** Look for an unchanged object before writing (off when the target is known to be empty). */
  readonly skipUnchanged: boolean;
  /** Multipart uploads at once, and parts in flight for each: bounds the memory of large files. */
  readonly largeFiles: number;
  readonly partsInFlight: number;
  /** How the source is read (see fs-calls.ts); `auto` when not given. */
  readonly fsCalls?: FsCallsSetting;
  /** Storage class, encryption, tags and never-overwrite of every write; none: S3's defaults. */
  readonly writes?: WriteOptions;
}

const S_IFMT = 0o170000n;
const TYPE_BITS = { file: 0o100000n, dir: 0o040000n, symlink: 0o120000n } as const;

export class ChangedWhileReading extends Error {
  override readonly name = "ChangedWhileReading";
}

/** What a path leads to is no longer the entry the crawl saw: reported with the reason, never copied. */
export class SourceChanged extends Error {
  override readonly name = "SourceChanged";
}

const causeOf = <T extends Error>(err: unknown, type: new (...a: never[]) => T): T | undefined =>
  err instanceof type ? err : err instanceof Error && err.cause instanceof type ? err.cause : undefined;

export class S3Target implements Target {
  private readonly source: RootedTree;
  private readonly large: Limiter;
  private calls: FsCalls = threadCalls;
  private readonly writes: WriteOptions;

  constructor(readonly opts: S3TargetOptions) {
    this.source = new RootedTree(opts.sourceRoot, "source");
    this.large = new Limiter(opts.largeFiles);
    this.writes = opts.writes ?? NO_WRITE_OPTIONS;
  }

  /**
   * The write options of an entry: directory markers and symlinks stay in STANDARD under an archive class, so
   * that yas3fs still lists the tree and reads its links (and a few bytes do not pay an archive's minimums).
   */
  private writesFor(kind: TocEntry["kind"]): WriteOptions {
    const cls = this.writes.storageClass;
    return kind !== "file" && cls && ARCHIVE_CLASSES.includes(cls)
      ? { ...this.writes, storageClass: undefined }
      : this.writes;
  }

  /** How this target reads its source: `direct` or `threads` (known after init). */
  get fsCalls(): "direct" | "threads" {
    return this.calls.direct ? "direct" : "threads";
  }

  get description(): string {
    return `s3://${this.opts.store.bucket}/${this.opts.prefix}`;
  }

  async init(): Promise<void> {
    this.calls = chooseFsCalls(this.opts.fsCalls ?? "auto", this.opts.sourceRoot);
    this.source.calls = this.calls;
    await this.source.init();
  }

  async write(entry: TocEntry, _stage: Stage, signal: AbortSignal): Promise<EntryOutcome> {
    await this.calls.breathe();
    try {
      const r = await this.locate(entry);
      if ("reason" in r) return failed(r.reason);
      const { src, key } = r;
      for (let attempt = 1; ; attempt++) {
        const opened = await this.openSource(entry, src);
        if ("reason" in opened) return failed(opened.reason);
        const { st, handle } = opened;
        try {
          const head = this.opts.skipUnchanged ? await this.opts.store.head(key, signal) : null;
          if (head) {
            const diff = differences(head, st, entry.kind, this.writesFor(entry.kind));
            if (diff.length === 0)
              return { status: "unchanged", bytes: 0, ...fileChecksum(entry.kind, head.crc32) };
            if (this.writes.noOverwrite) return existsAndDiffers(diff);
          }
          const out = await this.upload(entry, src, key, st, handle, signal);
          return out === "exists" ? await this.existing(key, st, entry.kind, signal) : out;
        } catch (err) {
          const moved = causeOf(err, SourceChanged);
          if (moved) return failed(moved.message);
          if (!causeOf(err, ChangedWhileReading)) throw err;
          if (attempt >= 2) {
            return failed("changed while being read (size or mtime moved), twice; not recorded as copied");
          }
        } finally {
          await handle?.close();
        }
      }
    } catch (err) {
      return failed(failedReason(err));
    }
  }

  async check(entry: TocEntry, signal: AbortSignal): Promise<EntryOutcome> {
    await this.calls.breathe();
    try {
      const r = await this.locate(entry);
      if ("reason" in r) return failed(r.reason);
      const { src, key } = r;
      const head = await this.opts.store.head(key, signal);
      if (!head) return failed(`missing in the bucket (key ${JSON.stringify(key)})`);
      const attr = parseAttr(head.metadata.attr);
      if (!attr)
        return failed(
          "the object has no readable attr metadata: yas3fs would show it with default owner and mode",
        );
      if ((attr.mode & S_IFMT) !== TYPE_BITS[entry.kind]) {
        return failed(`attr st_mode ${attr.mode.toString(8)} does not say ${entry.kind}`);
      }
      const st = await lstatSource(this.source.lookAt(entry.path, src), this.calls);
      const moved = !("reason" in st) && identityProblem(entry, st, this.source.dev);
      if (moved) return failed(moved);
      // Stored as asked (class, encryption and its key), whatever else is found.
      const problems: string[] = storedAsProblems(this.writesFor(entry.kind), head);
      if ("reason" in st) {
        const size = entry.kind === "file" && sizeProblem(head.size, entry.size, S3_RULES.sizeAt, "TOC");
        if (size) problems.push(size);
      } else {
        const size = await this.sizeOf(entry.kind, src, st);
        problems.push(
          ...metaProblems(s3Meta(head, attr), sourceMeta(st, size), entry.kind === "symlink", S3_RULES),
        );
        if (entry.kind === "file" && problems.length === 0) {
          const c = await this.checksumProblem(head, src, st, signal);
          if (c) problems.push(c);
        }
        if (entry.kind === "symlink" && problems.length === 0) {
          const [want, got] = await Promise.all([fs.readlink(src), this.body(key, signal)]);
          if (want !== got)
            problems.push(
              `link target ${JSON.stringify(got)} in the bucket, ${JSON.stringify(want)} in the source`,
            );
        }
      }
      if (problems.length > 0) return failed(problems.join("; "));
      return ok(entry.kind === "file" ? head.size : 0);
    } catch (err) {
      const moved = causeOf(err, SourceChanged);
      return failed(moved ? moved.message : failedReason(err));
    }
  }

  /**
   * The source entry, checked to be the one the crawl saw: a file opened (without following a symlink at the
   * last step) and its fstat, a directory's or a symlink's lstat.
   */
  private async openSource(
    entry: TocEntry,
    src: string,
  ): Promise<{ st: BigIntStats; handle?: SourceHandle } | { reason: string }> {
    if (entry.kind !== "file") {
      // Only metadata (and a link's text) is read: checked by lstat.
      const st = await lstatChecked(this.source, entry, src, this.calls);
      return "reason" in st ? st : { st };
    }
    return openChecked(this.source, entry, src, this.calls);
  }

  private async locate(entry: TocEntry): Promise<{ src: string; key: string } | { reason: string }> {
    const checked = checkTocPath(entry.path);
    if (!checked.ok) return { reason: checked.reason };
    const key = keyOf(this.opts.prefix, entry.path, entry.kind);
    const bytes = Buffer.byteLength(key);
    if (bytes > MAX_KEY_BYTES) {
      return {
        reason: `its key is ${bytes} bytes, over S3's limit of ${MAX_KEY_BYTES}: shorten the path or the prefix`,
      };
    }
    const src = await this.source.resolve(checked.segments);
    if (typeof src !== "string") return src;
    return { src, key };
  }

  private async upload(
    entry: TocEntry,
    src: string,
    key: string,
    st: BigIntStats,
    handle: SourceHandle | undefined,
    signal: AbortSignal,
  ): Promise<EntryOutcome | "exists"> {
    const store = this.opts.store;
    const write = this.writesFor(entry.kind);
    /** The outcome of a write that was made (or, with --no-overwrite, found something there). */
    const done = (r: WriteResult, bytes = 0, crc32?: string): EntryOutcome | "exists" =>
      r === "exists" ? r : { ...ok(bytes), ...(crc32 ? { checksum: `crc32:${crc32}` } : {}) };
    const name = key.endsWith("/") ? key.slice(0, -1) : key;
    const contentType = contentTypeFor(entry.kind, name);
    if (entry.kind === "dir") {
      const r = await store.put(
        key,
        "",
        { contentType, metadata: { attr: attrJson(st, 0) }, crc32: crc32Base64(""), write },
        signal,
      );
      return done(r);
    }
    if (entry.kind === "symlink") {
      const link = await this.calls.readlink(src);
      // The text read must be the checked link's: the same link is there after the read.
      const again = await lstatChecked(this.source, entry, src, this.calls);
      if ("reason" in again) return failed(again.reason);
      const size = Buffer.byteLength(link);
      const r = await store.put(
        key,
        link,
        { contentType, metadata: { attr: attrJson(st, size) }, crc32: crc32Base64(link), write },
        signal,
      );
      return done(r);
    }
    const size = Number(st.size);
    if (size < this.opts.multipartThresholdBytes && handle) {
      const body = await readWhole(handle, st);
      const crc32 = crc32Base64(body);
      const r = await store.put(
        key,
        body,
        {
          contentType,
          metadata: { attr: attrJson(st, body.length), [CRC_METADATA_KEY]: crc32 },
          crc32,
          write,
        },
        signal,
      );
      return done(r, body.length, crc32);
    }
    return this.large.run(async () => {
      const crc = new Crc32();
      const part = partSize(size, this.opts.minPartBytes);
      const r = await store.putMultipart(
        key,
        readParts(src, st, part, crc),
        () => crc.base64(),
        {
          contentType,
          metadata: { attr: attrJson(st, size), [PART_SIZE_METADATA_KEY]: String(part) },
          partSize: part,
          queueSize: this.opts.partsInFlight,
          write,
        },
        signal,
      );
      return done(r, size, crc.base64());
    });
  }

  /**
   * A write refused because an object is there (--no-overwrite): it is compared like a re-run's, and is
   * unchanged or reported as existing and different; never replaced.
   */
  private async existing(
    key: string,
    st: BigIntStats,
    kind: TocEntry["kind"],
    signal: AbortSignal,
  ): Promise<EntryOutcome> {
    const head = await this.opts.store.head(key, signal);
    // Gone again between the refused write and this look: something else writes this key; not ours to settle.
    if (!head) return failed("an object was there when written (--no-overwrite), and gone right after");
    const diff = differences(head, st, kind, this.writesFor(kind));
    return diff.length === 0
      ? { status: "unchanged", bytes: 0, ...fileChecksum(kind, head.crc32) }
      : existsAndDiffers(diff);
  }

  /**
   * A single-PUT object must carry the CRC32 we computed from the source as it was read; a multipart object's
   * stored checksum is compared with the source read again (whole-object or composite, as the store keeps it).
   */
  private async checksumProblem(
    head: ObjectHead,
    src: string,
    st: BigIntStats,
    signal: AbortSignal,
  ): Promise<string | null> {
    if (!head.crc32) return "the object carries no CRC32 checksum: it was not written by a checked upload";
    const recorded = head.metadata[CRC_METADATA_KEY];
    if (recorded !== undefined) {
      return recorded === head.crc32 && head.checksumType !== "COMPOSITE"
        ? null
        : `checksum ${head.crc32} in the bucket, ${recorded} computed from the source when it was read`;
    }
    const size = Number(st.size);
    const recordedPart = Number(head.metadata[PART_SIZE_METADATA_KEY]);
    const part = recordedPart > 0 ? recordedPart : partSize(size, this.opts.minPartBytes);
    const whole = new Crc32();
    const partCrcs: string[] = [];
    for await (const chunk of readParts(src, st, part, whole)) {
      signal.throwIfAborted();
      partCrcs.push(crc32Base64(chunk));
    }
    const want =
      head.checksumType === "COMPOSITE" || head.crc32.includes("-")
        ? compositeCrc32(partCrcs)
        : whole.base64();
    return want === head.crc32 ? null : `checksum ${head.crc32} in the bucket, ${want} from the source`;
  }

  private async sizeOf(kind: TocEntry["kind"], src: string, st: BigIntStats): Promise<number> {
    if (kind === "dir") return 0;
    if (kind === "symlink") return Buffer.byteLength(await this.calls.readlink(src));
    return Number(st.size);
  }

  private async body(key: string, signal: AbortSignal): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of await this.opts.store.get(key, signal)) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks).toString("utf8");
  }
}

/** Part size: at least `min`, whole MiB, and large enough that the file fits in 10,000 parts. */
export function partSize(size: number, min: number): number {
  const mib = 1024 * 1024;
  return Math.max(min, Math.ceil(size / 10_000 / mib) * mib);
}

/**
 * Why `attr`'s st_mtime is not the source's as yas3fs should read it, or null: the double it parses to must
 * floor to the source's second and be the double nearest the source's time in that second (see times.ts).
 */
export function attrTimeProblem(attr: ParsedAttr, srcNs: bigint): string | null {
  const want = attrSeconds(srcNs);
  if (attr.mtime === want) return null;
  const sec = splitNs(srcNs).sec;
  const shown = `st_mtime ${attr.mtimeText} in attr`;
  if (BigInt(Math.floor(attr.mtime)) !== sec) {
    return `${shown} reads as second ${Math.floor(attr.mtime)}, the source's is ${sec} (${exactSeconds(srcNs)})`;
  }
  return `${shown}, expected ${want} for the source's ${exactSeconds(srcNs)}`;
}

/** yas3fs's attr keeps the whole st_mode and the owner always; its st_mtime is a double (attrTimeProblem). */
const S3_RULES = {
  at: "in attr",
  sizeAt: "in the bucket",
  mode: "st_mode",
  owner: true,
  mtime: attrTimeProblem,
} as const satisfies MetaRules<ParsedAttr>;

const s3Meta = (head: ObjectHead, attr: ParsedAttr): TargetMeta<ParsedAttr> => ({
  mode: attr.mode,
  uid: attr.uid,
  gid: attr.gid,
  size: head.size,
  mtime: attr,
});

const sourceMeta = (st: BigIntStats, size: bigint | number): SourceMeta => ({
  mode: st.mode,
  uid: st.uid,
  gid: st.gid,
  size,
  mtimeNs: st.mtimeNs,
});

/** A file's stored CRC32 as the manifest shows it (nothing for directories and symlinks). */
function fileChecksum(kind: TocEntry["kind"], crc32: string | undefined): { checksum?: string } {
  return kind === "file" && crc32 ? { checksum: `crc32:${crc32}` } : {};
}

/**
 * How an object in the bucket differs from the source entry and the write options: none means it is
 * unchanged and need not be written again. Stored as asked (class, encryption), same `attr`, and for a file a
 * checked upload: S3 keeps a CRC32, and for single PUTs it is the one we computed from the source.
 */
function differences(
  head: ObjectHead,
  st: BigIntStats,
  kind: TocEntry["kind"],
  writes: WriteOptions,
): string[] {
  const attr = parseAttr(head.metadata.attr);
  if (!attr) return ["the object has no readable attr metadata"];
  const size = kind === "dir" ? 0 : st.size;
  const problems = metaProblems(s3Meta(head, attr), sourceMeta(st, size), kind === "symlink", S3_RULES);
  problems.push(...storedAsProblems(writes, head));
  if (kind === "file" && problems.length === 0) {
    const recorded = head.metadata[CRC_METADATA_KEY];
    const checked = recorded === undefined ? head.crc32 !== undefined : head.crc32 === recorded;
    if (!checked) problems.push("the object was not written by a checked upload (no CRC32 of ours)");
  }
  return problems;
}

/** An object that is there and is not the source's entry, which --no-overwrite keeps as it is. */
function existsAndDiffers(diff: readonly string[]): EntryOutcome {
  return failed(`exists and differs, not overwritten (--no-overwrite): ${diff.join("; ")}`);
}

/** Reads a small (opened and checked) file whole, checking that it did not change while read. */
async function readWhole(handle: SourceHandle, before: BigIntStats): Promise<Buffer> {
  // As many bytes as the stat says: a file that grew since shows in the stat after, one that shrank here.
  const body = await handle.read(Number(before.size));
  const after = await handle.stat();
  if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || body.length !== Number(before.size)) {
    throw new ChangedWhileReading();
  }
  return body;
}

/** Yields a large file in parts, feeding the whole-file CRC, and checks at the end that it did not change. */
export async function* readParts(
  src: string,
  before: BigIntStats,
  part: number,
  crc: Crc32,
): AsyncGenerator<Buffer> {
  // Opened again by path, without following a symlink at the last step: it must be the file `before` is of.
  const fh = await fs
    .open(src, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    .catch((err) => {
      if (errnoOf(err) === "ELOOP")
        throw new SourceChanged("changed during the run: now a symlink in the source");
      throw err;
    });
  try {
    const opened = await fh.stat({ bigint: true });
    if (opened.ino !== before.ino || opened.dev !== before.dev || !opened.isFile()) {
      throw new SourceChanged(
        `changed during the run: the path leads to another file than the one stat-ed (device ${opened.dev} inode ${opened.ino}, expected device ${before.dev} inode ${before.ino}); not copied`,
      );
    }
    const size = Number(before.size);
    for (let pos = 0; pos < size; pos += part) {
      const buf = Buffer.allocUnsafe(Math.min(part, size - pos));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
        if (bytesRead === 0) throw new ChangedWhileReading();
        got += bytesRead;
      }
      crc.update(buf);
      yield buf;
    }
    const after = await fh.stat({ bigint: true });
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs) throw new ChangedWhileReading();
  } finally {
    await fh.close();
  }
}

function failedReason(err: unknown): string {
  if (errnoOf(err)?.startsWith("E")) return reasonOf(err, "read");
  return describe(err);
}
