/** `s3://bucket/prefix` locations. */
export interface S3Location {
  readonly bucket: string;
  /** No slash at either end; "" for the whole bucket. */
  readonly prefix: string;
}

export function isS3Url(s: string): boolean {
  return s.startsWith("s3://");
}

/** Parses `s3://bucket[/prefix]`; throws with what is wrong and what is expected. */
export function parseS3Url(s: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(s);
  if (!m?.[1]) {
    throw new Error(
      `${JSON.stringify(s)} is not an S3 location: expected s3://BUCKET[/PREFIX] with a valid bucket name`,
    );
  }
  return { bucket: m[1], prefix: (m[2] ?? "").replace(/^\/+|\/+$/g, "") };
}
