/**
 * CRC32 (the IEEE polynomial S3 calls CRC32), computed natively by zlib while bytes stream by. S3 checks it on
 * every upload, for single PUTs and for each part and the whole of a multipart upload.
 */
import zlib from "node:zlib";

export class Crc32 {
  private value = 0;

  update(chunk: Uint8Array): this {
    this.value = zlib.crc32(chunk, this.value);
    return this;
  }

  base64(): string {
    return toBase64(this.value);
  }
}

export function crc32Base64(data: Uint8Array | string): string {
  return toBase64(zlib.crc32(data));
}

function toBase64(v: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b.toString("base64");
}

/** The composite checksum of a multipart object: CRC32 of the parts' CRC32s, then `-<parts>`. */
export function compositeCrc32(partCrcs: readonly string[]): string {
  const raw = Buffer.concat(partCrcs.map((c) => Buffer.from(c, "base64")));
  return `${crc32Base64(raw)}-${partCrcs.length}`;
}
