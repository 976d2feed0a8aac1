/**
 * AWS Signature Version 4 for the requests s3-wire.ts sends by hand: a request without a query string, its
 * path already URI-encoded (S3 does not encode it twice), its payload hash given as `x-amz-content-sha256`.
 * Two hashes per request (the canonical request's SHA-256 and the signature's HMAC); the signing key is derived
 * once a day per key pair. The SDK's signer costs several times as much per small object: it derives a cache
 * key with an HMAC, and normalises and copies the request in several passes, on every request.
 */
import { createHash, createHmac } from "node:crypto";

export interface SigV4Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface SigV4Request {
  readonly method: string;
  /** The path as sent, every segment already encoded. */
  readonly path: string;
  /** Lower-case names; `host` and `x-amz-content-sha256` among them. */
  readonly headers: Readonly<Record<string, string>>;
}

export class SigV4Signer {
  private cached: { readonly id: string; readonly key: Buffer } | null = null;

  constructor(
    readonly region: string,
    readonly service: string,
  ) {}

  /** The request's headers with `x-amz-date`, the session token (when there is one) and `authorization`. */
  sign(req: SigV4Request, creds: SigV4Credentials, now: Date = new Date()): Record<string, string> {
    const longDate = this.dateOf(now);
    const shortDate = longDate.slice(0, 8);
    const headers: Record<string, string> = { ...req.headers, "x-amz-date": longDate };
    if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
    const names = Object.keys(headers).sort();
    let canonicalHeaders = "";
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(headers[n] as string)}\n`;
    const signedHeaders = names.join(";");
    const payloadHash = headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD";
    const canonical = `${req.method}\n${req.path}\n\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${shortDate}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${createHash("sha256").update(canonical).digest("hex")}`;
    const signature = createHmac("sha256", this.signingKey(shortDate, creds)).update(toSign).digest("hex");
    headers.authorization =
      `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  /** `x-amz-date` of `now`, formatted once per second. */
  private dateSec = Number.NaN;
  private dateText = "";
  private dateOf(now: Date): string {
    const sec = Math.floor(now.getTime() / 1000);
    if (sec !== this.dateSec) {
      this.dateText = amzDate(now);
      this.dateSec = sec;
    }
    return this.dateText;
  }

  private signingKey(shortDate: string, creds: SigV4Credentials): Buffer {
    const id = `${shortDate}\n${creds.accessKeyId}\n${creds.secretAccessKey}`;
    if (this.cached?.id === id) return this.cached.key;
    const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
    const key = hmac(
      hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, shortDate), this.region), this.service),
      "aws4_request",
    );
    this.cached = { id, key };
    return key;
  }
}

/** `YYYYMMDDTHHMMSSZ`. */
function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** A header value as SigV4 signs it: trimmed, each run of white space one space. */
function canonicalValue(v: string): string {
  return /\s\s|^\s|\s$|[\t\n\r]/.test(v) ? v.trim().replace(/\s+/g, " ") : v;
}
