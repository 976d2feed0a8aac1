/**
 * Keeps the TOC batches a worker holds hidden from the others while it works on them and until their results
 * are reported, and puts batches back (visibility 0) that it gives up, so that another worker takes them at once.
 */
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { MessageQueue } from "../core/ports.ts";
import { pause } from "../core/retry.ts";

export class VisibilityKeeper {
  constructor(
    private readonly queue: MessageQueue,
    private readonly visibilitySec: number,
    private readonly held: () => readonly string[],
    private readonly log: Logger,
  ) {}

  /** Extends every held batch a third of the way into its visibility timeout, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const everyMs = Math.max(1_000, (this.visibilitySec * 1000) / 3);
    while (!signal.aborted) {
      await pause(everyMs, signal);
      const receipts = this.held();
      if (receipts.length === 0 || signal.aborted) continue;
      try {
        await this.queue.extend(receipts, this.visibilitySec, signal);
      } catch (err) {
        if (signal.aborted) break;
        // A batch whose hold lapsed may be worked by another worker too: the master counts it once.
        this.log.warn(`could not extend the visibility of ${receipts.length} batch(es): ${describe(err)}`);
      }
    }
  }

  /** Visibility 0: visible to every worker again now. A failure leaves them to come back after their timeout. */
  async release(receipts: readonly string[], why: string, signal?: AbortSignal): Promise<void> {
    if (receipts.length === 0) return;
    try {
      await this.queue.extend(receipts, 0, signal);
    } catch (err) {
      this.log.warn(
        `could not put back ${receipts.length} TOC message(s) (${why}); they come back after their visibility timeout: ${describe(err)}`,
      );
    }
  }
}
