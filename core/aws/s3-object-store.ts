import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { crc32Base64 } from "../checksum.ts";
import { AwsCallError, describe } from "../errors.ts";
import { AdaptiveLimit, AdaptiveLimiter } from "../limiter.ts";
import type {
  CopyOptions,
  ListedObject,
  MultipartOptions,
  ObjectHead,
  ObjectStore,
  PutOptions,
  WriteResult,
} from "../object-store.ts";
import { prefixOf, type RequestPacer, unpaced } from "../prefix-pacer.ts";
import { isThrottle, withRetry } from "../retry.ts";
import {
  NO_WRITE_OPTIONS,
  type StorageClass,
  taggingOf,
  type WriteOptions,
  writeHeaders,
} from "../write-options.ts";
import type { S3Wire } from "./s3-wire.ts";

/** The checksum types S3 reports that we act on. */
function checksumTypeOf(type: string | undefined): "FULL_OBJECT" | "COMPOSITE" | undefined {
  return type === "FULL_OBJECT" || type === "COMPOSITE" ? type : undefined;
}

/**
 * `ObjectStore` on S3: single PUTs and multipart uploads carrying CRC32 checksums, HEAD with checksum mode.
 * Every request passes an adaptive limit (halved on SlowDown, raised again while S3 keeps up) shared by all
 * stores of the process, and the one retry policy. With a pacer (the workers' stores), requests for an object
 * wait for their prefix's turn first (prefix-pacer.ts), writes and reads in lanes of their own as S3 counts
 * them apart, and SlowDown is left to the pacer (`prefixPacedLimiter`).
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;

  constructor(
    client: S3Client,
    readonly bucket: string,
    private readonly limiter: AdaptiveLimiter = sharedLimiter,
    /** When given, single PUTs and HEADs go signed by hand (see s3-wire.ts) where the bucket allows it. */
    private readonly wire?: S3Wire,
    /** Paces requests by prefix (the workers'); give it `prefixPacedLimiter` as the limit. */
    private readonly pacer: RequestPacer = unpaced,
  ) {
    this.client = client;
  }

  /** A request for `key` in its prefix's lane (when S3 has asked that prefix to slow down), then the limit. */
  private gate<T>(
    kind: "read" | "write",
    key: string,
    task: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.pacer.run(`${this.bucket}/${kind}:${prefixOf(key)}`, () => this.limiter.run(task), signal);
  }

  private async wireFor(): Promise<S3Wire | null> {
    return this.wire && (await this.wire.supports(this.bucket)) ? this.wire : null;
  }

  private send: S3Client["send"] = ((
    command: { input?: { Key?: string } },
    options?: { abortSignal?: AbortSignal },
  ) => {
    const run = () => this.client.send(command as never, options as never);
    const key = command.input?.Key;
    // Object requests are paced by prefix; bucket-level ones (listings, the bucket itself) only limited.
    if (key === undefined) return this.limiter.run(run);
    const read = command instanceof HeadObjectCommand || command instanceof GetObjectCommand;
    return this.gate(read ? "read" : "write", key, run, options?.abortSignal);
  }) as S3Client["send"];

  async head(key: string, signal?: AbortSignal): Promise<ObjectHead | null> {
    const wire = await this.wireFor();
    if (wire) {
      try {
        const head = () => wire.head(this.bucket, key, signal);
        const h = await withRetry(() => this.gate("read", key, head, signal), { signal });
        if (!h) return null;
        return { ...h, checksumType: checksumTypeOf(h.checksumType) };
      } catch (err) {
        throw new AwsCallError("HeadObject", `s3://${this.bucket}/${key}`, { cause: err });
      }
    }
    try {
      const out = await withRetry(
        () =>
          this.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: "ENABLED" }), {
            abortSignal: signal,
          }),
        { signal },
      );
      return {
        size: out.ContentLength ?? 0,
        contentType: out.ContentType,
        metadata: out.Metadata ?? {},
        crc32: out.ChecksumCRC32,
        checksumType: checksumTypeOf(out.ChecksumType),
        etag: out.ETag,
        storageClass: out.StorageClass,
        encryption: out.ServerSideEncryption,
        kmsKeyId: out.SSEKMSKeyId,
      };
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) return null;
      throw new AwsCallError("HeadObject", `s3://${this.bucket}/${key}`, { cause: err });
    }
  }

  async put(key: string, body: Buffer | string, o: PutOptions, signal?: AbortSignal): Promise<WriteResult> {
    const wire = await this.wireFor();
    const w = o.write ?? NO_WRITE_OPTIONS;
    try {
      if (wire) {
        const bytes = typeof body === "string" ? Buffer.from(body) : body;
        const p = {
          body: bytes,
          contentType: o.contentType,
          metadata: o.metadata,
          crc32: o.crc32,
          headers: writeHeaders(w, true),
        };
        const put = () => wire.put(this.bucket, key, p, signal);
        return await withRetry(() => this.gate("write", key, put, signal), { signal });
      }
      await withRetry(
        () =>
          this.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: key,
              Body: body,
              ContentType: o.contentType,
              Metadata: { ...o.metadata },
              // The algorithm is named with the checksum (see s3-wire.ts); the SDK sends ours, computes none.
              ...(o.crc32 ? { ChecksumAlgorithm: "CRC32" as const, ChecksumCRC32: o.crc32 } : {}),
              ...sdkWriteParams(w),
              ...(w.noOverwrite ? { IfNoneMatch: "*" } : {}),
            }),
            { abortSignal: signal },
          ),
        { signal },
      );
      return "written";
    } catch (err) {
      if (w.noOverwrite && isPreconditionFailed(err)) return "exists";
      throw new AwsCallError("PutObject", `s3://${this.bucket}/${key}`, { cause: err });
    }
  }

  async putMultipart(
    key: string,
    parts: AsyncIterable<Buffer>,
    wholeCrc32: () => string,
    upload: MultipartOptions,
    signal?: AbortSignal,
  ): Promise<WriteResult> {
    const where = `s3://${this.bucket}/${key}`;
    const opts = { abortSignal: signal };
    const w = upload.write ?? NO_WRITE_OPTIONS;
    let uploadId: string | undefined;
    try {
      uploadId = await this.startUpload(key, upload.contentType, upload.metadata, "FULL_OBJECT", signal, w);
      const done: { PartNumber: number; ETag: string; ChecksumCRC32: string }[] = [];
      const inFlight = new Set<Promise<void>>();
      let failure: unknown = null;
      let n = 0;
      for await (const part of parts) {
        if (failure) break;
        const partNumber = ++n;
        const crc = crc32Base64(part);
        const p = withRetry(
          () =>
            this.send(
              new UploadPartCommand({
                Bucket: this.bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: partNumber,
                Body: part,
                ChecksumAlgorithm: "CRC32",
                ChecksumCRC32: crc,
              }),
              opts,
            ),
          { signal },
        )
          .then((out) => {
            done.push({ PartNumber: partNumber, ETag: out.ETag ?? "", ChecksumCRC32: crc });
          })
          .catch((err) => {
            failure ??= err;
          });
        inFlight.add(p);
        p.finally(() => inFlight.delete(p));
        if (inFlight.size >= upload.queueSize) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      done.sort((a, b) => a.PartNumber - b.PartNumber);
      try {
        await withRetry(
          () =>
            this.send(
              new CompleteMultipartUploadCommand({
                Bucket: this.bucket,
                Key: key,
                UploadId: uploadId,
                MultipartUpload: { Parts: done },
                ChecksumCRC32: wholeCrc32(),
                ChecksumType: "FULL_OBJECT",
                ...(w.noOverwrite ? { IfNoneMatch: "*" } : {}),
              }),
              opts,
            ),
          { signal },
        );
      } catch (err) {
        if (!(w.noOverwrite && isPreconditionFailed(err))) throw err;
        // Something is there already: the parts are dropped, the object stays as it is.
        // (An abort that fails is tried again, and said, by the catch below.)
        if ((await this.abandon(key, uploadId)) !== "") throw err;
        return "exists";
      }
      return "written";
    } catch (err) {
      throw new AwsCallError("multipart upload", where + (await this.abandon(key, uploadId)), { cause: err });
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    try {
      const out = await this.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
        abortSignal: signal,
      });
      return out.Body as Readable;
    } catch (err) {
      throw new AwsCallError("GetObject", `s3://${this.bucket}/${key}`, { cause: err });
    }
  }

  async copyFrom(
    sourceBucket: string,
    key: string,
    targetKey: string,
    o: CopyOptions,
    signal?: AbortSignal,
  ): Promise<void> {
    const copySource = `${sourceBucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`;
    const where = `s3://${sourceBucket}/${key}`;
    const opts = { abortSignal: signal };
    if (o.source.size < o.multipartThresholdBytes) {
      try {
        await withRetry(
          () =>
            this.send(
              new CopyObjectCommand({
                Bucket: this.bucket,
                Key: targetKey,
                CopySource: copySource,
                MetadataDirective: "COPY",
                ChecksumAlgorithm: "CRC32",
              }),
              opts,
            ),
          { signal },
        );
        return;
      } catch (err) {
        throw new AwsCallError("CopyObject", where, { cause: err });
      }
    }
    await this.copyInParts(copySource, where, targetKey, o, signal);
  }

  /** A copy in parts (UploadPartCopy): the metadata does not travel by itself here, so it is set on the new upload. */
  private async copyInParts(
    copySource: string,
    where: string,
    targetKey: string,
    copy: CopyOptions,
    signal?: AbortSignal,
  ): Promise<void> {
    const opts = { abortSignal: signal };
    let uploadId: string | undefined;
    try {
      uploadId = await this.startUpload(
        targetKey,
        copy.source.contentType,
        copy.source.metadata,
        undefined,
        signal,
      );
      const parts: { PartNumber: number; ETag: string; ChecksumCRC32?: string }[] = [];
      const ranges = byteRanges(copy.source.size, copy.partSize);
      let next = 0;
      const lane = async () => {
        while (next < ranges.length) {
          const n = next++;
          const [a, b] = ranges[n] as [number, number];
          const out = await withRetry(
            () =>
              this.send(
                new UploadPartCopyCommand({
                  Bucket: this.bucket,
                  Key: targetKey,
                  UploadId: uploadId,
                  PartNumber: n + 1,
                  CopySource: copySource,
                  CopySourceRange: `bytes=${a}-${b}`,
                }),
                opts,
              ),
            { signal },
          );
          parts.push({
            PartNumber: n + 1,
            ETag: out.CopyPartResult?.ETag ?? "",
            ...(out.CopyPartResult?.ChecksumCRC32 ? { ChecksumCRC32: out.CopyPartResult.ChecksumCRC32 } : {}),
          });
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, copy.queueSize) }, lane));
      parts.sort((x, y) => x.PartNumber - y.PartNumber);
      await withRetry(
        () =>
          this.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key: targetKey,
              UploadId: uploadId,
              MultipartUpload: { Parts: parts },
            }),
            opts,
          ),
        { signal },
      );
    } catch (err) {
      throw new AwsCallError("multipart copy", where + (await this.abandon(targetKey, uploadId)), {
        cause: err,
      });
    }
  }

  /** Creates a multipart upload with CRC32 checksums (of the whole object when `checksumType` says so). */
  private async startUpload(
    key: string,
    contentType: string | undefined,
    metadata: Readonly<Record<string, string>>,
    checksumType: "FULL_OBJECT" | undefined,
    signal?: AbortSignal,
    write: WriteOptions = NO_WRITE_OPTIONS,
  ): Promise<string | undefined> {
    const created = await withRetry(
      () =>
        this.send(
          new CreateMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            ContentType: contentType,
            Metadata: { ...metadata },
            ChecksumAlgorithm: "CRC32",
            ...(checksumType ? { ChecksumType: checksumType } : {}),
            ...sdkWriteParams(write),
          }),
          { abortSignal: signal },
        ),
      { signal },
    );
    return created.UploadId;
  }

  /**
   * Aborts an unfinished multipart upload, so that its parts are not kept (and billed); best effort: what
   * could not be aborted is said after the resource's name in the error of the upload ("" when all is well).
   */
  private async abandon(key: string, uploadId: string | undefined): Promise<string> {
    if (!uploadId) return "";
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
      return "";
    } catch (err) {
      return ` (its unfinished upload ${uploadId} could not be aborted: ${describe(err)})`;
    }
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ListedObject> {
    let token: string | undefined;
    do {
      let out: import("@aws-sdk/client-s3").ListObjectsV2CommandOutput;
      try {
        out = await withRetry(
          () =>
            this.send(
              new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
              { abortSignal: signal },
            ),
          { signal },
        );
      } catch (err) {
        throw new AwsCallError("ListObjectsV2", `s3://${this.bucket}/${prefix}`, { cause: err });
      }
      for (const o of out.Contents ?? []) {
        yield { key: o.Key ?? "", size: o.Size ?? 0, lastModifiedMs: o.LastModified?.getTime() ?? 0 };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async deleteMany(
    keys: readonly string[],
    signal?: AbortSignal,
  ): Promise<{ key: string; reason: string }[]> {
    const failed: { key: string; reason: string }[] = [];
    // DeleteObjects takes at most 1,000 keys a request; a key already gone counts as deleted.
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      try {
        const out = await withRetry(
          () =>
            this.send(
              new DeleteObjectsCommand({
                Bucket: this.bucket,
                Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true },
              }),
              { abortSignal: signal },
            ),
          { signal },
        );
        for (const e of out.Errors ?? [])
          failed.push({ key: e.Key ?? "", reason: `${e.Code ?? "error"}: ${e.Message ?? "not deleted"}` });
      } catch (err) {
        const where = `s3://${this.bucket}/${chunk[0]} and ${chunk.length - 1} more`;
        throw new AwsCallError("DeleteObjects", where, { cause: err });
      }
    }
    return failed;
  }

  async ensureBucket(signal?: AbortSignal): Promise<void> {
    try {
      await this.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
      return;
    } catch {
      // not there (or not visible): try to create it
    }
    try {
      await this.send(new CreateBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === "BucketAlreadyOwnedByYou") return;
      throw new AwsCallError("CreateBucket", this.bucket, { cause: err });
    }
  }
}

/** The write options as the SDK's parameters of PutObject and CreateMultipartUpload (see writeHeaders). */
function sdkWriteParams(w: WriteOptions): {
  StorageClass?: StorageClass;
  ServerSideEncryption?: "AES256" | "aws:kms";
  SSEKMSKeyId?: string;
  BucketKeyEnabled?: boolean;
  Tagging?: string;
} {
  const e = w.encryption;
  return {
    ...(w.storageClass ? { StorageClass: w.storageClass } : {}),
    ...(e ? { ServerSideEncryption: e.algorithm } : {}),
    ...(e?.algorithm === "aws:kms" ? { BucketKeyEnabled: true } : {}),
    ...(e?.kmsKeyId ? { SSEKMSKeyId: e.kmsKeyId } : {}),
    ...(w.tags.length > 0 ? { Tagging: taggingOf(w.tags) } : {}),
  };
}

/** S3's answer to `If-None-Match: *` when an object is there. */
function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "PreconditionFailed" || e?.$metadata?.httpStatusCode === 412;
}

/** Requests to S3 in flight per process: up to 512, starting at 128. */
const sharedLimiter = new AdaptiveLimiter(new AdaptiveLimit(4, 512, 128), isThrottle);

/**
 * The limit of stores whose requests are paced by prefix: S3's SlowDown is a prefix's, and is the pacer's to
 * answer, so it no longer halves the requests in flight for every prefix; other throttling still does.
 */
export const prefixPacedLimiter = new AdaptiveLimiter(
  new AdaptiveLimit(4, 512, 128),
  (err) => isThrottle(err) && !isSlowDown(err),
);

function isSlowDown(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "SlowDown" || e?.$metadata?.httpStatusCode === 503;
}

/** The inclusive byte ranges of the parts of an object of `size` bytes, `partSize` bytes each (the last shorter). */
function byteRanges(size: number, partSize: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (let start = 0; start < size; start += partSize)
    ranges.push([start, Math.min(size, start + partSize) - 1]);
  return ranges;
}
