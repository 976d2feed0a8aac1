/**
 * Per-prefix pacing of S3 requests. S3 serves 3,500 PUT/COPY/POST/DELETE and 5,500 GET/HEAD requests per
 * second per partitioned prefix and answers 503 SlowDown beyond that, while it splits a hot prefix (which takes
 * minutes). A prefix that said SlowDown gets a rate of its own: additive increase (the rate climbs by
 * `stepPerSec` for each second of requests that went through), multiplicative decrease (a SlowDown multiplies
 * it by `backoff`, at most once per `holdMs`, since the requests already in flight all come back throttled
 * together; and the climb starts again only after that hold). A prefix that never said SlowDown is not paced at all, and one whose rate climbs past
 * `releasePerSec` runs free again: pacing costs nothing where S3 keeps up.
 *
 * The retry of a throttled request stays with the one retry policy (retry.ts); the pacer only decides when
 * each attempt may leave. `PrefixPacer` is pure (clock and random come in); `PacedRequests` waits for it.
 */

/**
 * The unit S3 partitions by, for a key: its parent directory's path (with the trailing slash). yas3fs keys are
 * file paths, so the objects of one directory share their longest prefix, are written together (the TOC lists
 * a directory's entries together) and are what S3 finds hot and splits. A finer unit (the whole key) would pace
 * each object alone and never see the load; a coarser one (the top directory) would slow down sibling
 * directories that S3 serves from partitions of their own. A directory's marker (`a/b/`) is paced with its
 * siblings (`a/`), where it is written.
 */
export function prefixOf(key: string): string {
  const k = key.endsWith("/") ? key.slice(0, -1) : key;
  return k.slice(0, k.lastIndexOf("/") + 1);
}

export interface PacerTuning {
  /** Requests/s added for each second of requests without SlowDown (the additive increase). */
  readonly stepPerSec: number;
  /** What a SlowDown multiplies the prefix's rate by (the multiplicative decrease), in (0, 1). */
  readonly backoff: number;
  /** A prefix is never paced below this many requests/s. */
  readonly minPerSec: number;
  /** Past this rate the prefix runs free again (S3 has split it, or the load went elsewhere). */
  readonly releasePerSec: number;
  /** At most one decrease per prefix this often. */
  readonly holdMs: number;
  /** Each gap between two requests is the rate's gap times 1 ± this (so that workers do not march in step). */
  readonly jitter: number;
  /** Prefixes remembered; the least recently used beyond this are forgotten (bounded memory). */
  readonly maxPrefixes: number;
}

export const defaultPacerTuning: PacerTuning = {
  stepPerSec: 50,
  backoff: 0.5,
  minPerSec: 5,
  releasePerSec: 7_000,
  holdMs: 1_000,
  jitter: 0.2,
  maxPrefixes: 4_096,
};

interface Lane {
  /** Requests/s allowed, or null: not paced. */
  rate: number | null;
  /** When the next request may leave. */
  nextAt: number;
  lastDecreaseAt: number;
  /** Requests sent in the current one-second window, and in the one before. */
  windowStart: number;
  windowCount: number;
  lastWindowCount: number;
}

const WINDOW_MS = 1_000;

export class PrefixPacer {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    readonly tuning: PacerTuning = defaultPacerTuning,
    private readonly random: () => number = Math.random,
  ) {}

  /** The lane's rate in requests/s, or null when it is not paced. */
  rate(lane: string): number | null {
    return this.lanes.get(lane)?.rate ?? null;
  }

  /** Prefixes remembered now. */
  get size(): number {
    return this.lanes.size;
  }

  /**
   * A request of `lane` asks to leave at `now`: 0 when it may (it takes the slot), else how long until the next
   * slot, in ms (it takes nothing: it asks again then, at the rate of that moment).
   */
  reserve(lane: string, now: number): number {
    const s = this.touch(lane, now);
    if (s.rate !== null && now < s.nextAt) return s.nextAt - now;
    if (now - s.windowStart >= WINDOW_MS) {
      s.lastWindowCount = now - s.windowStart >= 2 * WINDOW_MS ? 0 : s.windowCount;
      s.windowStart = now;
      s.windowCount = 0;
    }
    s.windowCount++;
    if (s.rate !== null) {
      const spread = 1 + this.tuning.jitter * (2 * this.random() - 1);
      s.nextAt = now + (WINDOW_MS / s.rate) * spread;
    }
    return 0;
  }

  /**
   * A request of `lane` went through: the rate climbs (by `stepPerSec` for a second's worth of them), once the
   * last decrease has had its hold time to show.
   */
  succeeded(lane: string, now: number): void {
    const s = this.lanes.get(lane);
    if (!s || s.rate === null || now - s.lastDecreaseAt < this.tuning.holdMs) return;
    s.rate += this.tuning.stepPerSec / s.rate;
    if (s.rate >= this.tuning.releasePerSec) s.rate = null;
  }

  /** S3 said SlowDown for `lane`: the rate drops to `backoff` times what it was (or what was sent). */
  throttled(lane: string, now: number): void {
    const s = this.touch(lane, now);
    if (s.rate !== null && now - s.lastDecreaseAt < this.tuning.holdMs) return;
    const sent = Math.max(
      s.lastWindowCount,
      (s.windowCount * WINDOW_MS) / Math.max(now - s.windowStart, 250),
    );
    const from = s.rate === null ? sent : Math.min(s.rate, Math.max(sent, this.tuning.minPerSec));
    s.rate = Math.max(this.tuning.minPerSec, from * this.tuning.backoff);
    s.lastDecreaseAt = now;
    s.nextAt = Math.max(s.nextAt, now);
  }

  private touch(lane: string, now: number): Lane {
    let s = this.lanes.get(lane);
    if (s) {
      // Most recently used last: the map's first key is the one to forget.
      this.lanes.delete(lane);
    } else {
      s = {
        rate: null,
        nextAt: now,
        lastDecreaseAt: now,
        windowStart: now,
        windowCount: 0,
        lastWindowCount: 0,
      };
      if (this.lanes.size >= this.tuning.maxPrefixes) {
        const oldest = this.lanes.keys().next();
        if (!oldest.done) this.lanes.delete(oldest.value);
      }
    }
    this.lanes.set(lane, s);
    return s;
  }
}

/** Runs a request in its lane's turn, and tells the pacer how it went. */
export interface RequestPacer {
  run<T>(lane: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

/** No pacing: every request leaves at once. */
export const unpaced: RequestPacer = { run: (_lane, task) => task() };

/** The requests of a lane waiting for their slots, and the timer that lets the first one go. */
interface Queue {
  readonly waiting: (() => void)[];
  timer: NodeJS.Timeout | null;
}

/**
 * A `PrefixPacer` on the clock: the requests of a lane wait in order, the first of them asks the pacer for its
 * slot at the rate of the moment (so a rate that climbs speeds up the whole queue at once), then the request
 * runs and its outcome goes back to the pacer. An abort takes a request out of the queue.
 */
export class PacedRequests implements RequestPacer {
  private readonly queues = new Map<string, Queue>();

  constructor(
    readonly pacer: PrefixPacer,
    private readonly isThrottle: (err: unknown) => boolean,
    private readonly now: () => number = Date.now,
  ) {}

  async run<T>(lane: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.turn(lane, signal);
    try {
      const out = await task();
      this.pacer.succeeded(lane, this.now());
      return out;
    } catch (err) {
      if (this.isThrottle(err)) this.pacer.throttled(lane, this.now());
      throw err;
    }
  }

  private turn(lane: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    let queue = this.queues.get(lane);
    if (!queue) {
      const wait = this.pacer.reserve(lane, this.now());
      if (wait === 0) return Promise.resolve();
      queue = { waiting: [], timer: null };
      this.queues.set(lane, queue);
      this.sleep(lane, queue, wait);
    }
    const q = queue;
    return new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = q.waiting.indexOf(go);
        if (i >= 0) q.waiting.splice(i, 1);
        if (q.waiting.length === 0) this.close(lane, q);
        reject(signal?.reason);
      };
      q.waiting.push(go);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Lets the lane's first requests go while the pacer allows, then sleeps until its next slot. */
  private pump(lane: string, queue: Queue): void {
    queue.timer = null;
    while (queue.waiting.length > 0) {
      const wait = this.pacer.reserve(lane, this.now());
      if (wait > 0) {
        this.sleep(lane, queue, wait);
        return;
      }
      queue.waiting.shift()?.();
    }
    this.close(lane, queue);
  }

  private sleep(lane: string, queue: Queue, ms: number): void {
    queue.timer = setTimeout(() => this.pump(lane, queue), ms);
  }

  private close(lane: string, queue: Queue): void {
    if (queue.timer) clearTimeout(queue.timer);
    queue.timer = null;
    if (this.queues.get(lane) === queue) this.queues.delete(lane);
  }
}
