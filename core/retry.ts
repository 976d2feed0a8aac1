/**
 * The one retry policy: exponential backoff with full jitter, only for errors classified retryable
 * (throttling, 5xx, network). The SDK retries single calls too; this policy wraps whole operations
 * (a batch send with partial failures, a loop iteration) so that a short outage does not end a run.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface RetryPolicy {
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export const defaultRetry: RetryPolicy = { attempts: 6, baseMs: 200, maxMs: 5_000 };

const retryableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "UND_ERR_SOCKET",
  "ThrottlingException",
  "Throttling",
  "RequestThrottled",
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "InternalFailure",
  "RequestTimeout",
  "TimeoutError",
  // S3's 409 to two conditional writes of one key at once: "retry the request".
  "ConditionalRequestConflict",
]);

export function isRetryable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  if (e.name === "AbortError") return false;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  return retryableCodes.has(e.code ?? "") || retryableCodes.has(e.name);
}

/** Errors by which a service asks its client to slow down (S3's SlowDown, a 503): the adaptive limits halve on them. */
export function isThrottle(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e?.name === "SlowDown" ||
    e?.name === "ThrottlingException" ||
    e?.name === "RequestLimitExceeded" ||
    e?.$metadata?.httpStatusCode === 503
  );
}

export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(policy.maxMs, policy.baseMs * 2 ** attempt));
}

/** Past this many failures in a row the backoff no longer grows (it is at its cap long before). */
const MAX_BACKOFF_STEP = 8;

/**
 * The pause of a loop that outlasts an outage (a queue it polls, a lane it sends on) after `failures` failures
 * in a row: the policy's backoff, plus `floorMs` so that a failing loop never spins. Such a loop never gives
 * up by count; its bound is a time (see OutageClock) or the run's own end.
 */
export function outagePauseMs(failures: number, floorMs: number, policy: RetryPolicy = defaultRetry): number {
  return backoffMs(policy, Math.min(failures, MAX_BACKOFF_STEP)) + floorMs;
}

/** How long a loop's calls have failed in a row, against the time it may outlast an outage for. */
export class OutageClock {
  private since: number | null = null;

  constructor(
    readonly boundMs: number,
    private readonly now: () => number,
  ) {}

  /** A call failed: true when the calls have now failed for longer than the bound. */
  failed(): boolean {
    this.since ??= this.now();
    return this.now() - this.since > this.boundMs;
  }

  /** A call succeeded: how long the outage lasted, or null when there was none. */
  recovered(): number | null {
    const since = this.since;
    this.since = null;
    return since === null ? null : this.now() - since;
  }
}

/**
 * A service that asks its client to slow down (see isThrottle) is retried for this long rather than a number of
 * times: the pacers and adaptive limits lower the rate meanwhile, and a file given up on because the store was
 * busy would fail for nothing. Past it the error is thrown as any other.
 */
export const THROTTLE_RETRY_MS = 120_000;

export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  opts: {
    policy?: RetryPolicy;
    signal?: AbortSignal | undefined;
    retryable?: (err: unknown) => boolean;
    /** Retry for this long from the first attempt instead of `policy.attempts` times (an outage outlasted). */
    forMs?: number | undefined;
    /** How long a throttle (isThrottle) is retried when no `forMs` is given. */
    throttleForMs?: number | undefined;
    now?: () => number;
  } = {},
): Promise<T> {
  const policy = opts.policy ?? defaultRetry;
  const retryable = opts.retryable ?? isRetryable;
  const now = opts.now ?? Date.now;
  const started = now();
  const spent = (attempt: number, err: unknown) => {
    if (opts.forMs !== undefined) return now() - started > opts.forMs;
    if (isThrottle(err)) return now() - started > (opts.throttleForMs ?? THROTTLE_RETRY_MS);
    return attempt + 1 >= policy.attempts;
  };
  for (let attempt = 0; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (opts.signal?.aborted || !retryable(err) || spent(attempt, err)) throw err;
      await sleep(backoffMs(policy, attempt), undefined, { signal: opts.signal });
    }
  }
}

/**
 * Waits `ms`, or less when `signal` aborts first. Never rejects: a loop that sleeps between rounds checks its
 * signal after waking instead of catching an abort. Resolves true when the whole time passed.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (full: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(full);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
