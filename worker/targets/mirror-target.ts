/**
 * Bucket mirror (the original's second mode): each entry is an object under the source prefix, copied
 * server-side to the same relative key under the target prefix, with its Content-Type and user metadata (so
 * yas3fs's `attr` and directory markers survive). Objects of the multipart threshold or more are copied in parts.
 */
import { describe } from "../../core/errors.ts";
import type { Stage, TocEntry } from "../../core/messages.ts";
import type { ObjectHead, ObjectStore } from "../../core/object-store.ts";
import { partSize } from "./s3-target.ts";
import { type EntryOutcome, failed, ok, type Target } from "./target.ts";
import { keyOf, MAX_KEY_BYTES } from "./yas3fs-format.ts";

export interface MirrorTargetOptions {
  readonly source: ObjectStore;
  readonly sourcePrefix: string;
  readonly target: ObjectStore;
  readonly targetPrefix: string;
  readonly multipartThresholdBytes: number;
  readonly minPartBytes: number;
  readonly skipUnchanged: boolean;
}

export class MirrorTarget implements Target {
  constructor(readonly opts: MirrorTargetOptions) {}

  get description(): string {
    return `s3://${this.opts.target.bucket}/${this.opts.targetPrefix}`;
  }

  async init(): Promise<void> {}

  async write(entry: TocEntry, _stage: Stage, signal: AbortSignal): Promise<EntryOutcome> {
    try {
      const keys = this.keys(entry);
      if ("reason" in keys) return failed(keys.reason);
      const src = await this.opts.source.head(keys.src, signal);
      if (!src) return failed("vanished from the source bucket after the listing");
      if (this.opts.skipUnchanged && sameObject(src, await this.opts.target.head(keys.dst, signal))) {
        return { status: "unchanged", bytes: 0 };
      }
      await this.opts.target.copyFrom(
        this.opts.source.bucket,
        keys.src,
        keys.dst,
        {
          source: src,
          multipartThresholdBytes: this.opts.multipartThresholdBytes,
          partSize: partSize(src.size, this.opts.minPartBytes),
          queueSize: 4,
        },
        signal,
      );
      return ok(src.size);
    } catch (err) {
      return failed(describe(err));
    }
  }

  async check(entry: TocEntry, signal: AbortSignal): Promise<EntryOutcome> {
    try {
      const keys = this.keys(entry);
      if ("reason" in keys) return failed(keys.reason);
      const [src, dst] = await Promise.all([
        this.opts.source.head(keys.src, signal),
        this.opts.target.head(keys.dst, signal),
      ]);
      if (!dst) return failed(`missing in the target bucket (key ${JSON.stringify(keys.dst)})`);
      if (!src) return failed("vanished from the source bucket before validation");
      const problems = differences(src, dst);
      return problems.length ? failed(problems.join("; ")) : ok(dst.size);
    } catch (err) {
      return failed(describe(err));
    }
  }

  private keys(entry: TocEntry): { src: string; dst: string } | { reason: string } {
    // "." is the prefix's marker, a directory; the listing reports any other object it would stand for.
    if (entry.path === "." && entry.kind !== "dir")
      return { reason: `a ${entry.kind} cannot be the root "."` };
    const src = keyOf(this.opts.sourcePrefix, entry.path, entry.kind);
    const dst = keyOf(this.opts.targetPrefix, entry.path, entry.kind);
    const bytes = Buffer.byteLength(dst);
    if (bytes > MAX_KEY_BYTES)
      return { reason: `its target key is ${bytes} bytes, over S3's limit of ${MAX_KEY_BYTES}` };
    return { src, dst };
  }
}

/** What differs between a source object and its copy: size, type, user metadata, and checksum or ETag. */
function differences(src: ObjectHead, dst: ObjectHead): string[] {
  const out: string[] = [];
  if (src.size !== dst.size) out.push(`size ${dst.size} in the target, ${src.size} in the source`);
  if ((src.contentType ?? "") !== (dst.contentType ?? "")) {
    out.push(`Content-Type ${dst.contentType} in the target, ${src.contentType} in the source`);
  }
  for (const k of new Set([...Object.keys(src.metadata), ...Object.keys(dst.metadata)])) {
    if (src.metadata[k] !== dst.metadata[k]) out.push(`metadata ${k} differs`);
  }
  const comparable = (h: ObjectHead) =>
    h.crc32 !== undefined && !h.crc32.includes("-") && h.checksumType !== "COMPOSITE";
  if (comparable(src) && comparable(dst)) {
    if (src.crc32 !== dst.crc32) out.push(`checksum ${dst.crc32} in the target, ${src.crc32} in the source`);
  } else if (
    src.etag &&
    dst.etag &&
    !src.etag.includes("-") &&
    !dst.etag.includes("-") &&
    src.etag !== dst.etag
  ) {
    out.push(`ETag ${dst.etag} in the target, ${src.etag} in the source`);
  }
  return out;
}

function sameObject(src: ObjectHead, dst: ObjectHead | null): boolean {
  return dst !== null && differences(src, dst).length === 0;
}
