/**
 * EC2's instance metadata service (IMDSv2), as far as a worker on a Spot instance needs it: a session token
 * (`PUT /latest/api/token`), then `GET /latest/meta-data/spot/instance-action`, which answers 404 until EC2
 * has decided to take the instance and then `{"action": "terminate", "time": "2024-01-01T00:02:00Z"}`.
 * Plain HTTP to a link-local address: no SDK call, no credentials.
 */
import { AwsCallError } from "../errors.ts";
import type { SpotNotice, SpotNotices } from "../ports.ts";

export const IMDS_DEFAULT_ENDPOINT = "http://169.254.169.254";

const TOKEN_PATH = "/latest/api/token";
const NOTICE_PATH = "/latest/meta-data/spot/instance-action";
const TOKEN_TTL_SEC = 21_600;
/** The token is asked for again this long before EC2 would expire it. */
const TOKEN_SLACK_MS = 60_000;
/** Each request's bound: the service answers in milliseconds on an instance; off one nothing answers at all. */
const REQUEST_TIMEOUT_MS = 2_000;

export class ImdsSpotNotices implements SpotNotices {
  private token: { readonly value: string; readonly expiresAtMs: number } | null = null;

  constructor(
    private readonly endpoint: string = IMDS_DEFAULT_ENDPOINT,
    private readonly now: () => number = Date.now,
  ) {}

  async check(signal: AbortSignal): Promise<SpotNotice | null> {
    let res = await this.getNotice(await this.sessionToken(signal), signal);
    if (res.status === 401) {
      // The token expired or the service restarted: one new token, one more try.
      this.token = null;
      res = await this.getNotice(await this.sessionToken(signal), signal);
    }
    const body = await res.text();
    if (res.status === 404) return null;
    if (res.status !== 200) {
      const answer = new Error(`HTTP ${res.status}: ${body.slice(0, 200)}`);
      throw new AwsCallError(`instance metadata GET ${NOTICE_PATH}`, this.endpoint, { cause: answer });
    }
    return parseNotice(body);
  }

  private async sessionToken(signal: AbortSignal): Promise<string> {
    if (this.token && this.now() < this.token.expiresAtMs - TOKEN_SLACK_MS) return this.token.value;
    const res = await this.request(
      TOKEN_PATH,
      "PUT",
      { "X-aws-ec2-metadata-token-ttl-seconds": String(TOKEN_TTL_SEC) },
      signal,
    );
    const value = (await res.text()).trim();
    if (res.status !== 200 || value === "") {
      const answer = new Error(`HTTP ${res.status} without a token`);
      throw new AwsCallError(`instance metadata PUT ${TOKEN_PATH}`, this.endpoint, { cause: answer });
    }
    this.token = { value, expiresAtMs: this.now() + TOKEN_TTL_SEC * 1000 };
    return value;
  }

  private getNotice(token: string, signal: AbortSignal): Promise<Response> {
    return this.request(NOTICE_PATH, "GET", { "X-aws-ec2-metadata-token": token }, signal);
  }

  private async request(
    path: string,
    method: "GET" | "PUT",
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    try {
      return await fetch(`${this.endpoint}${path}`, {
        method,
        headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
    } catch (err) {
      throw new AwsCallError(`instance metadata ${method} ${path}`, this.endpoint, { cause: err });
    }
  }
}

/** EC2's notice body; a time that does not parse is kept as none (the drain's own bound then applies). */
export function parseNotice(body: string): SpotNotice {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`the Spot interruption notice is not JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  const o = (typeof json === "object" && json !== null ? json : {}) as { action?: unknown; time?: unknown };
  if (typeof o.action !== "string" || o.action === "") {
    throw new Error(`the Spot interruption notice names no action: ${JSON.stringify(body.slice(0, 200))}`);
  }
  const at = typeof o.time === "string" ? Date.parse(o.time) : Number.NaN;
  return { action: o.action, takenAtMs: Number.isFinite(at) ? at : null };
}
