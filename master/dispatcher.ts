/**
 * Sends one stage of the TOC: entries from the crawl (WRITE, files and symlinks) or from the run's TOC files
 * (WRITE directories, VALIDATE), mixed across directories and packed into batches, numbered from `firstBatch`, sent in groups with
 * SendMessageBatch. A partial batch leaves after `lingerMs`, so workers start while the crawl still runs.
 *
 * Batch numbers are one space for the whole run: every stage starts where the previous one ended, and no number
 * is sent before `reserve` has made it durable in the run record, so a resumed master starts above all of them.
 */
import { clearTimeout, setTimeout } from "node:timers";
import { encodeMessage, entryToWire, type Stage, type TocEntry, type WorkPhase } from "../core/messages.ts";
import type { MessageQueue } from "../core/ports.ts";
import { isRetryable, type RetryPolicy, withRetry } from "../core/retry.ts";
import { type BatchLimits, InterleavingBatcher } from "../toc/toc-batcher.ts";
import type { MachineEvent } from "./phase-machine.ts";

export interface DispatchOptions {
  readonly runId: string;
  readonly phase: WorkPhase;
  readonly stage: Stage;
  readonly firstBatch: number;
  readonly entries: AsyncIterable<TocEntry>;
  readonly queue: MessageQueue;
  readonly limits: BatchLimits;
  readonly lingerMs: number;
  readonly emit: (event: MachineEvent) => void;
  readonly now: () => number;
  readonly signal: AbortSignal;
  /** How long a send keeps being retried while SQS cannot be reached (an outage), before the stage fails. */
  readonly retryForMs?: number;
  /** Directory entries counted by the source (WRITE content stage), reported with completion. */
  readonly dirs?: () => number;
  /** Makes every batch number below `end` durable before it is used (see run-record.ts). */
  readonly reserve?: (end: number) => Promise<void>;
}

const TIMEOUT = Symbol("timeout");

export async function dispatchStage(options: DispatchOptions): Promise<void> {
  const batcher = new InterleavingBatcher(options.limits);
  const sender = batchSender(options);
  // Each entry's place in the stage's stream, while the batcher holds it (a bounded window): the batches mix
  // directories, and the manifest maps each batch's entries back to their TOC lines by these.
  const places = new Map<TocEntry, number>();
  let pulled = 0;
  const enqueue = (batch: readonly TocEntry[]) =>
    sender.enqueue(
      batch,
      batch.map((e) => {
        const at = places.get(e) ?? -1;
        places.delete(e);
        return at;
      }),
    );
  const linger = lingerTimer(options.lingerMs);
  const it = options.entries[Symbol.asyncIterator]();
  // A pull may still be pending when we stop (abort): its rejection must not go unhandled. Every pull is
  // awaited below while the stage runs, and the error it carries is thrown there; only an abandoned one is not.
  const pull = () => {
    const p = it.next();
    p.catch(awaitedElsewhere);
    return p;
  };
  let next = pull();
  try {
    for (;;) {
      options.signal.throwIfAborted();
      sender.throwIfFailed();
      const r = batcher.pending > 0 || sender.waiting > 0 ? await linger.race(next) : await next;
      if (r === TIMEOUT) {
        for (const b of batcher.flush()) enqueue(b);
        await sender.send();
        continue;
      }
      if (r.done) break;
      next = pull();
      places.set(r.value, pulled++);
      for (const b of batcher.add(r.value)) enqueue(b);
      if (sender.waiting >= 10) await sender.send();
    }
  } finally {
    linger.stop();
  }
  for (const b of batcher.flush()) enqueue(b);
  await sender.send();
  await sender.settled();
  options.emit({
    type: "dispatch-complete",
    at: options.now(),
    batches: sender.batches(),
    entries: sender.sentEntries(),
    dirs: options.dirs?.() ?? 0,
  });
}

/** The stage's batches on their way to the TOC queue: encoded, numbered, reserved, announced, then sent. */
interface BatchSender {
  /** Batches encoded and waiting for the next send. */
  readonly waiting: number;
  /** `places`: each entry's place in the stage's stream of entries. */
  enqueue(entries: readonly TocEntry[], places: readonly number[]): void;
  /** Sends what waits, with back-pressure: returns once fewer than 4 sends are in flight. */
  send(): Promise<void>;
  /** Throws the first send's failure, if one failed. */
  throwIfFailed(): void;
  /** Waits for every send, then throws the first failure, if one failed. */
  settled(): Promise<void>;
  /** Batches numbered so far. */
  batches(): number;
  /** Entries whose send SQS acknowledged. */
  sentEntries(): number;
}

function batchSender(options: DispatchOptions): BatchSender {
  let nextBatch = options.firstBatch;
  let sentEntries = 0;
  // Full batches wait here as message bodies, not entries: an entry lives no longer than its own batch, so
  // the crawl's objects die young instead of filling the old generation on a big TOC.
  let outbox: string[] = [];
  let outboxPlaces: (readonly number[])[] = [];
  let outboxEntries = 0;
  let outboxFirst = nextBatch;
  const inFlight = new Set<Promise<void>>();
  let sendError: unknown = null;
  const throwIfFailed = () => {
    if (sendError) throw sendError;
  };
  return {
    get waiting() {
      return outbox.length;
    },
    enqueue(entries, places) {
      outbox.push(
        encodeMessage(options.runId, {
          type: "TOC_BATCH",
          phase: options.phase,
          stage: options.stage,
          batch: nextBatch++,
          entries: entries.map(entryToWire),
        }),
      );
      outboxPlaces.push(places);
      outboxEntries += entries.length;
    },
    async send() {
      if (outbox.length === 0) return;
      const bodies = outbox;
      const entries = outboxEntries;
      const places = outboxPlaces;
      const first = outboxFirst;
      outbox = [];
      outboxPlaces = [];
      outboxEntries = 0;
      outboxFirst = nextBatch;
      await options.reserve?.(first + bodies.length);
      // Issued before the send: a worker may finish a batch of this send before SQS acknowledges all of it.
      options.emit({
        type: "batches-issued",
        at: options.now(),
        first,
        batches: bodies.length,
        entries,
        places,
      });
      const p = sendOutlasting(options, bodies).then(() => {
        sentEntries += entries;
        options.emit({ type: "batches-sent", at: options.now(), batches: bodies.length, entries });
      });
      inFlight.add(p);
      p.catch((err) => {
        sendError ??= err;
      }).finally(() => inFlight.delete(p));
      // Back-pressure: at most 4 SendMessageBatch calls at once.
      if (inFlight.size >= 4) await Promise.race(inFlight);
    },
    throwIfFailed,
    async settled() {
      await Promise.allSettled(inFlight);
      throwIfFailed();
    },
    batches: () => nextBatch - options.firstBatch,
    sentEntries: () => sentEntries,
  };
}

/**
 * `race(next)` settles as `next` does, or with TIMEOUT once `ms` pass first: a partial batch leaves once no
 * entry came for that long. One timer, restarted for every wait, instead of a timer and two promises per entry;
 * and no long-lived promise that every wait would hang a reaction on.
 */
function lingerTimer(ms: number) {
  let timer: NodeJS.Timeout | null = null;
  let waiter: ((t: typeof TIMEOUT) => void) | null = null;
  return {
    race<T>(next: Promise<T>): Promise<T | typeof TIMEOUT> {
      return new Promise<T | typeof TIMEOUT>((resolve, reject) => {
        waiter = resolve;
        if (timer) timer.refresh();
        else {
          timer = setTimeout(() => {
            timer = null;
            waiter?.(TIMEOUT);
          }, ms);
        }
        next.then(resolve, reject);
      });
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      waiter = null;
    },
  };
}

/** Marks a promise's rejection as handled: the promise itself is awaited where its error matters. */
function awaitedElsewhere(_err: unknown): void {}

/** The backoff of a send that outlasts an outage: bounded by `retryForMs`, not by a count. */
const OUTLAST_SEND: RetryPolicy = { attempts: 0, baseMs: 500, maxMs: 5_000 };

/** Sends, and while the failure is retryable (the service is down or throttling) tries again, for a while. */
async function sendOutlasting(o: DispatchOptions, bodies: string[]): Promise<void> {
  await withRetry(() => o.queue.send(bodies, o.signal), {
    policy: OUTLAST_SEND,
    signal: o.signal,
    retryable: (err) => isRetryable((err as Error).cause ?? err),
    forMs: o.retryForMs ?? 0,
    now: o.now,
  });
}
