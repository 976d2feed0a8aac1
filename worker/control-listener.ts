/**
 * Listens on the worker's own control queue (subscribed to the master's topic) and hands what it hears to the
 * session: the messages, or the failure, and whether the queue is gone (the master removed it). The queue is
 * replaced when the worker rejoins.
 */
import { isQueueGone } from "../core/aws/sqs-queue.ts";
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { decodeMessage } from "../core/messages.ts";
import type { ControlSubscription } from "../core/ports.ts";
import { outagePauseMs, pause } from "../core/retry.ts";
import { Nudge } from "./nudge.ts";
import type { SessionEvent } from "./session.ts";

export interface ControlListenerOptions {
  readonly log: Logger;
  readonly emit: (e: SessionEvent) => void;
  /** False while the worker rejoins: nothing to listen on then. */
  readonly listening: () => boolean;
  readonly runId: () => string | null;
  readonly now?: () => number;
}

/** A receive's long poll: short, so that a MODE is answered within it. */
const LONG_POLL_SEC = 2;
/** While the session is not listening, it looks again at least this often. */
const IDLE_LOOK_MS = 1_000;
/** The least pause after a failed receive, added to the one retry policy's backoff. */
const OUTAGE_FLOOR_MS = 200;

export class ControlListener {
  private readonly nudge = new Nudge();
  private readonly now: () => number;

  constructor(
    private sub: ControlSubscription,
    private readonly o: ControlListenerOptions,
  ) {
    this.now = o.now ?? Date.now;
  }

  get subscription(): ControlSubscription {
    return this.sub;
  }

  replace(sub: ControlSubscription): void {
    this.sub = sub;
    this.nudge.nudge();
  }

  wake(): void {
    this.nudge.nudge();
  }

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (!this.o.listening()) {
        await this.nudge.wait(IDLE_LOOK_MS, signal);
        continue;
      }
      const queue = this.sub.queue;
      const startedAt = this.now();
      let messages: Awaited<ReturnType<typeof queue.receive>>;
      try {
        messages = await queue.receive({ max: 10, waitSec: LONG_POLL_SEC }, signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        const gone = isQueueGone(err);
        this.o.emit({ type: "control-failed", at: this.now(), startedAt, gone, error: describe(err) });
        if (!gone) await pause(outagePauseMs(failures++, OUTAGE_FLOOR_MS), signal);
        continue;
      }
      const runId = this.o.runId() ?? undefined;
      const items = messages.map((m) => ({
        id: m.id,
        decoded: decodeMessage(m.body, { expectRun: runId, accept: ["MODE", "SHUTDOWN"] }),
      }));
      this.o.emit({ type: "control", at: this.now(), startedAt, items });
      if (messages.length === 0) continue;
      try {
        await queue.delete(
          messages.map((m) => m.receipt),
          signal,
        );
      } catch (err) {
        if (signal.aborted) break;
        // Not deleted: they come again and are seen twice, which a mode and a shutdown can bear.
        this.o.log.warn(`could not delete ${messages.length} control message(s): ${describe(err)}`);
      }
    }
  }
}
