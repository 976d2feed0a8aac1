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

export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(policy.maxMs, policy.baseMs * 2 ** attempt));
}

export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  opts: {
    policy?: RetryPolicy;
    signal?: AbortSignal | undefined;
    retryable?: (err: unknown) => boolean;
  } = {},
): Promise<T> {
  const policy = opts.policy ?? defaultRetry;
  const retryable = opts.retryable ?? isRetryable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (attempt + 1 >= policy.attempts || !retryable(err) || opts.signal?.aborted) throw err;
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
