/**
 * The port to an S3 bucket (or a prefix of it). Only `core/aws/` implements it.
 */
import type { Readable } from "node:stream";
import type { StoredAs, WriteOptions } from "./write-options.ts";

export interface ObjectHead extends StoredAs {
  readonly size: number;
  readonly contentType: string | undefined;
  /** User metadata, keys lower-case without the `x-amz-meta-` prefix. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The CRC32 S3 stores for the object (base64), with its type: of the whole object or of its parts. */
  readonly crc32: string | undefined;
  readonly checksumType: "FULL_OBJECT" | "COMPOSITE" | undefined;
  readonly etag: string | undefined;
}

export interface PutOptions {
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Base64 CRC32 of the body: S3 refuses the body when it does not match. */
  readonly crc32: string;
  /** Storage class, encryption, tags, never-overwrite; none: S3's defaults. */
  readonly write?: WriteOptions | undefined;
}

/**
 * What a write did: `exists` when it was asked never to overwrite and an object was already there (S3's
 * 412 to `If-None-Match: *`): nothing was written.
 */
export type WriteResult = "written" | "exists";

export interface MultipartOptions {
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly partSize: number;
  /** Parts uploaded at once for this object. */
  readonly queueSize: number;
  readonly write?: WriteOptions | undefined;
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly lastModifiedMs: number;
}

export interface CopyOptions {
  /** The source object's head: its size decides single or multipart copy; its metadata goes along. */
  readonly source: ObjectHead;
  /** Objects of this size or more are copied in parts (S3 copies at most 5 GiB in one request). */
  readonly multipartThresholdBytes: number;
  readonly partSize: number;
  readonly queueSize: number;
}

export interface ObjectStore {
  readonly bucket: string;
  head(key: string, signal?: AbortSignal): Promise<ObjectHead | null>;
  put(key: string, body: Buffer | string, o: PutOptions, signal?: AbortSignal): Promise<WriteResult>;
  /**
   * Uploads in parts, each with its own CRC32; `parts` yields the bytes in order and the whole object's CRC32
   * is given when they are done, for S3 to check the whole.
   */
  putMultipart(
    key: string,
    parts: AsyncIterable<Buffer>,
    wholeCrc32: () => string,
    o: MultipartOptions,
    signal?: AbortSignal,
  ): Promise<WriteResult>;
  get(key: string, signal?: AbortSignal): Promise<Readable>;
  /** Server-side copy from another bucket, keeping Content-Type and user metadata. */
  copyFrom(
    sourceBucket: string,
    key: string,
    targetKey: string,
    o: CopyOptions,
    signal?: AbortSignal,
  ): Promise<void>;
  /** Every object under a key prefix, page by page (ListObjectsV2). */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ListedObject>;
  ensureBucket(signal?: AbortSignal): Promise<void>;
  /** Deletes these keys (a key already gone counts as deleted); returns the keys S3 refused, with why. */
  deleteMany(keys: readonly string[], signal?: AbortSignal): Promise<{ key: string; reason: string }[]>;
}
