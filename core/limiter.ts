/** A counting semaphore: at most `limit` tasks at once, the rest wait in order. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Tasks started or waiting. */
  get load(): number {
    return this.active + this.waiting.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once fewer than `n` tasks wait (at once if they do already). */
  whenQueuedBelow(n: number): Promise<void> {
    if (this.waiting.length < n) return Promise.resolve();
    return new Promise((resolve) => this.lowWaiters.push({ below: n, resolve }));
  }

  private lowWaiters: { below: number; resolve: () => void }[] = [];

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
      if (this.lowWaiters.length > 0) {
        const n = this.waiting.length;
        const ready = this.lowWaiters.filter((w) => n < w.below);
        if (ready.length > 0) {
          this.lowWaiters = this.lowWaiters.filter((w) => n >= w.below);
          for (const w of ready) w.resolve();
        }
      }
    }
  }
}

/**
 * A limit that adapts (additive increase, multiplicative decrease): halved when the service says slow down,
 * raised by one after `raiseAfter` successes in a row, always within [min, max].
 */
export class AdaptiveLimit {
  private current: number;
  private streak = 0;

  constructor(
    private readonly min: number,
    private readonly max: number,
    start = max,
    private readonly raiseAfter = 20,
  ) {
    this.current = Math.max(min, Math.min(max, start));
  }

  get value(): number {
    return this.current;
  }

  success(): void {
    if (++this.streak >= this.raiseAfter) {
      this.streak = 0;
      this.current = Math.min(this.max, this.current + 1);
    }
  }

  throttled(): void {
    this.streak = 0;
    this.current = Math.max(this.min, Math.floor(this.current / 2));
  }
}

/** A semaphore whose limit follows an `AdaptiveLimit`, fed by the outcome of each task. */
export class AdaptiveLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly limit: AdaptiveLimit,
    private readonly isThrottle: (err: unknown) => boolean,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    while (this.active >= this.limit.value) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      const out = await task();
      this.limit.success();
      return out;
    } catch (err) {
      if (this.isThrottle(err)) this.limit.throttled();
      throw err;
    } finally {
      this.active--;
      // Wake as many as the (possibly raised) limit allows; each checks the limit again when it runs.
      for (let free = this.limit.value - this.active; free > 0 && this.waiting.length > 0; free--) {
        this.waiting.shift()?.();
      }
    }
  }
}

/**
 * A steady pace: `take(n)` resolves when `n` more units fit in `perSec` since the first, so that a long run
 * averages `perSec` at most. 0 takes no time. Cancelled by the signal (it then resolves at once).
 */
export class Pace {
  private nextAtMs = 0;

  constructor(
    private readonly perSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  async take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.perSec <= 0 || n <= 0) return;
    const t = this.now();
    const startAt = Math.max(t, this.nextAtMs);
    this.nextAtMs = startAt + (n * 1000) / this.perSec;
    const wait = startAt - t;
    if (wait <= 0 || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
