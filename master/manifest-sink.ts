/**
 * Where the manifest's text goes as it is made: a file, or an S3 object by a streamed multipart upload; gzip on
 * the way when the name ends in `.gz`. Nothing is held beyond one part (8 MiB) on the way to S3.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import { Crc32 } from "../core/checksum.ts";
import type { ObjectStore } from "../core/object-store.ts";
import { isS3Url, parseS3Url } from "../core/s3-url.ts";

export interface ManifestSink {
  /** Where it goes, as given. */
  readonly destination: string;
  write(text: string): Promise<void>;
  /** Ends the text and waits until it is stored (the file closed, the upload completed). */
  close(): Promise<void>;
}

/** Parts of the upload: over S3's 5 MiB minimum, and what one part in flight holds in memory. */
const PART_BYTES = 8 * 1024 * 1024;

/**
 * Opens `destination` (a file path or `s3://BUCKET/KEY`) for the manifest. `storeFor` gives the object store of
 * a bucket; only an s3:// destination needs it.
 */
export function openManifestSink(
  destination: string,
  storeFor: ((bucket: string) => ObjectStore) | undefined,
  signal?: AbortSignal,
): ManifestSink {
  const gzip = destination.endsWith(".gz");
  const head: Writable & Readable = gzip ? zlib.createGzip() : new PassThrough();
  let stored: Promise<void>;
  if (isS3Url(destination)) {
    const { bucket, prefix: key } = parseS3Url(destination);
    if (!key) throw new Error(`--manifest-out ${destination} names no object: give s3://BUCKET/KEY`);
    if (!storeFor)
      throw new Error(`--manifest-out ${destination}: this program has no S3 client to write it`);
    const crc = new Crc32();
    stored = storeFor(bucket)
      .putMultipart(
        key,
        partsOf(head, crc),
        () => crc.base64(),
        {
          contentType: gzip ? "application/gzip" : "application/x-ndjson",
          metadata: {},
          partSize: PART_BYTES,
          queueSize: 2,
        },
        signal,
      )
      .then(() => undefined);
  } else {
    stored = pipeline(head, createWriteStream(destination), signal ? { signal } : {});
  }
  // Held until close: a failure while writing is thrown by the next write or by close, never lost.
  let failure: unknown = null;
  const settled = stored.then(
    () => undefined,
    (err: unknown) => {
      failure ??= err;
    },
  );
  return {
    destination,
    async write(text) {
      if (failure) throw failure;
      if (!head.write(text)) await Promise.race([once(head, "drain"), settled]);
      if (failure) throw failure;
    },
    async close() {
      head.end();
      await settled;
      if (failure) throw failure;
    },
  };
}

/** The stream's bytes in parts of PART_BYTES (the last one shorter; one empty part for no bytes at all). */
async function* partsOf(stream: Readable, crc: Crc32): AsyncGenerator<Buffer> {
  let held: Buffer[] = [];
  let bytes = 0;
  let parts = 0;
  const take = (): Buffer => {
    const whole = Buffer.concat(held, bytes);
    const part = whole.subarray(0, Math.min(PART_BYTES, whole.length));
    const rest = whole.subarray(part.length);
    held = rest.length > 0 ? [rest] : [];
    bytes = rest.length;
    parts++;
    crc.update(part);
    return part;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    held.push(chunk);
    bytes += chunk.length;
    while (bytes >= PART_BYTES) yield take();
  }
  if (bytes > 0 || parts === 0) yield take();
}
