/**
 * AWS Signature Version 4 for the requests s3-wire.ts sends by hand: a request without a query string, its
 * path already URI-encoded (S3 does not encode it twice), its payload hash given as `x-amz-content-sha256`.
 * Two hashes per request (the canonical request's SHA-256 and the signature's HMAC); the signing key is derived
 * once a day per key pair. The SDK's signer costs several times as much per small object: it derives a cache
 * key with an HMAC, and normalises and copies the request in several passes, on every request.
 */
import { createHmac, createSecretKey, hash, type KeyObject } from "node:crypto";

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
  private cached: { readonly id: string; readonly key: KeyObject } | null = null;
  /** The last request's header names as given, and sorted: requests of a kind share them. */
  private lastNames: readonly string[] = [];
  private lastSorted: readonly string[] = [];
  private lastSigned = "";

  constructor(
    readonly region: string,
    readonly service: string,
  ) {}

  /** The request's headers with `x-amz-date`, the session token (when there is one) and `authorization`. */
  sign(req: SigV4Request, creds: SigV4Credentials, now: Date = new Date()): Record<string, string> {
    return this.signHeaders(req.method, req.path, { ...req.headers }, creds, now);
  }

  /**
   * As `sign`, into `headers` itself (the caller's own object, made for this request): `x-amz-date`, the
   * session token and `authorization` are added to it, and it is returned.
   */
  signHeaders(
    method: string,
    path: string,
    headers: Record<string, string>,
    creds: SigV4Credentials,
    now: Date = new Date(),
  ): Record<string, string> {
    const longDate = this.dateOf(now);
    const shortDate = longDate.slice(0, 8);
    headers["x-amz-date"] = longDate;
    if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
    const names = this.sorted(Object.keys(headers));
    let canonicalHeaders = "";
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(headers[n] as string)}\n`;
    const signedHeaders = this.lastSigned;
    const payloadHash = headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD";
    const canonical = `${method}\n${path}\n\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const scope = `${shortDate}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${hash("sha256", canonical, "hex")}`;
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

  /** The names sorted, and their signed-headers list in `lastSigned`. */
  private sorted(names: string[]): readonly string[] {
    const last = this.lastNames;
    if (names.length !== last.length || names.some((n, i) => n !== last[i])) {
      this.lastNames = names;
      this.lastSorted = [...names].sort();
      this.lastSigned = this.lastSorted.join(";");
    }
    return this.lastSorted;
  }

  private signingKey(shortDate: string, creds: SigV4Credentials): KeyObject {
    const id = `${shortDate}\n${creds.accessKeyId}\n${creds.secretAccessKey}`;
    if (this.cached?.id === id) return this.cached.key;
    const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
    const key = hmac(
      hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, shortDate), this.region), this.service),
      "aws4_request",
    );
    const secret = createSecretKey(key);
    this.cached = { id, key: secret };
    return secret;
  }
}

/** `YYYYMMDDTHHMMSSZ`. */
function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/**
 * A header value as the SDK's signer signs it: CR and LF as spaces, each run of spaces and tabs one space, then
 * no space first or last. Most values need nothing: one pass over their characters says so.
 */
function canonicalValue(v: string): string {
  const last = v.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = v.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13) return normalised(v);
    if (c === 32 && (i === 0 || i === last || v.charCodeAt(i - 1) === 32)) return normalised(v);
  }
  return v;
}

function normalised(v: string): string {
  return v
    .replace(/[\r\n]/g, " ")
    .replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "");
}
