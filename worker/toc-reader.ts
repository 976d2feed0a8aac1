/**
 * Takes TOC batches while the session allows it, with back-pressure: more only while fewer entries wait for a
 * handler than there are handlers, or than a quarter of a batch (so the next batch is here before this one runs
 * dry). Every message received goes to the session, which runs, puts back or leaves it.
 */
import { describe } from "../core/errors.ts";
import type { Limiter } from "../core/limiter.ts";
import type { Logger } from "../core/log.ts";
import { decodeMessage, type WorkPhase } from "../core/messages.ts";
import type { MessageQueue } from "../core/ports.ts";
import { outagePauseMs, pause } from "../core/retry.ts";
import { Nudge } from "./nudge.ts";
import type { SessionEvent } from "./session.ts";

export interface TocReaderOptions {
  readonly queue: MessageQueue;
  readonly limiter: Limiter;
  readonly concurrency: number;
  /** What the session lets this worker take now (null: nothing). */
  readonly mayTake: () => WorkPhase | null;
  readonly runId: () => string | null;
  /** Batches being worked on now. */
  readonly running: () => number;
  readonly emit: (e: SessionEvent) => void;
  /** The session ended: the reader returns once its receive in flight (if any) has been handed over. */
  readonly ended: () => boolean;
  readonly log: Logger;
  readonly now?: () => number;
}

/** A receive's long poll: short, so that the end of the run is not waited out long. */
const LONG_POLL_SEC = 2;
/** While it may take nothing, the reader looks again at least this often. */
const IDLE_LOOK_MS = 1_000;
/** The least pause after a failed receive, added to the one retry policy's backoff. */
const OUTAGE_FLOOR_MS = 200;

export class TocReader {
  private readonly nudge = new Nudge();
  private avgBatchEntries: number;

  constructor(private readonly o: TocReaderOptions) {
    this.avgBatchEntries = 2 * o.concurrency;
  }

  wake(): void {
    this.nudge.nudge();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { limiter, concurrency } = this.o;
    const now = this.o.now ?? Date.now;
    let failures = 0;
    // Never aborted in mid-receive when the session ends: a long poll cut off on our side may still take
    // messages on the queue's side, hidden from everyone until their visibility timeout.
    while (!signal.aborted && !this.o.ended()) {
      const runId = this.o.runId();
      if (this.o.mayTake() === null || runId === null) {
        await this.nudge.wait(IDLE_LOOK_MS, signal);
        continue;
      }
      const enough = Math.max(concurrency, this.avgBatchEntries / 4);
      if (this.o.running() >= 100 || limiter.queued >= enough) {
        await Promise.race([this.nudge.wait(IDLE_LOOK_MS, signal), limiter.whenQueuedBelow(enough)]);
        continue;
      }
      // As many batches as keep about two rounds of entries waiting: one at first (batches can be large and
      // other workers want their share), more when batches turn out small.
      const want = Math.ceil((2 * concurrency - limiter.queued) / this.avgBatchEntries);
      let messages: Awaited<ReturnType<MessageQueue["receive"]>>;
      try {
        messages = await this.o.queue.receive(
          { max: Math.max(1, Math.min(10, want)), waitSec: LONG_POLL_SEC },
          signal,
        );
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        this.o.log.warn(`TOC queue (attempt ${++failures}): ${describe(err)}`);
        await pause(outagePauseMs(failures, OUTAGE_FLOOR_MS), signal);
        continue;
      }
      if (messages.length === 0) continue;
      const items = messages.map((m) => ({
        id: m.id,
        receipt: m.receipt,
        receiveCount: m.receiveCount,
        decoded: decodeMessage(m.body, { expectRun: runId, accept: ["TOC_BATCH"] }),
      }));
      for (const it of items) {
        if (it.decoded.ok && it.decoded.message.type === "TOC_BATCH") {
          this.avgBatchEntries = 0.8 * this.avgBatchEntries + 0.2 * it.decoded.message.entries.length;
        }
      }
      this.o.emit({ type: "toc", at: now(), items });
    }
  }
}
