/**
 * Everything a worker tells its master over the report queue, in two lanes that never wait for each other:
 * - results (and the messages that must come after them: FINAL, HOOK, ERROR_REPORT), sent in order, packed to
 *   fit one message each as encoded; a failed send keeps every item and is retried with the shared backoff;
 * - heartbeats: a small SUMMARY when nothing else was sent for a heartbeat period.
 * It never drops an item: a result leaves the outbox only once every part of it was delivered.
 */

import { sendGroups } from "../core/aws/sqs-queue.ts";
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { type BatchResult, encodeMessage, type MessageBody, type Phase } from "../core/messages.ts";
import type { MessageQueue } from "../core/ports.ts";
import { outagePauseMs } from "../core/retry.ts";
import { Nudge } from "./nudge.ts";
import { packSummaries, type SummaryHead } from "./summary-pack.ts";

type Item =
  | { readonly type: "result"; readonly receipt: string; readonly result: BatchResult }
  | { readonly type: "message"; readonly body: () => MessageBody };

interface Packed {
  readonly body: string;
  /** Receipts of the results this message completes. */
  readonly completes: readonly string[];
}

export interface OutboxOptions {
  readonly queue: MessageQueue;
  /** The run's id once known and the master has heard of this worker; null: hold everything. */
  readonly runId: () => string | null;
  readonly head: (kind: "CURRENT" | "FINAL", phase?: Phase) => SummaryHead;
  readonly reportMs: number;
  readonly heartbeatMs: number;
  readonly onSent: (receipts: readonly string[]) => void;
  readonly log: Logger;
  /** Stops both lanes (what is still queued is then abandoned). */
  readonly signal: AbortSignal;
  readonly now?: () => number;
}

export class Outbox {
  private readonly items: Item[] = [];
  private packed: Packed[] = [];
  private readonly nudge = new Nudge();
  private readonly heartbeatNudge = new Nudge();
  private lastSentMs = 0;
  private failures = 0;
  private urgent = false;
  private idleWaiters: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private readonly o: OutboxOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Results, messages and parts not yet delivered. */
  get pending(): number {
    return this.items.length + this.packed.length;
  }

  result(receipt: string, result: BatchResult): void {
    this.items.push({ type: "result", receipt, result });
    this.nudge.nudge();
  }

  /** A message that must reach the master after every result queued before it. */
  message(body: () => MessageBody): void {
    this.items.push({ type: "message", body });
    this.flushNow();
  }

  /** Sends what is queued without waiting for the report period (nothing else is in hand). */
  flushNow(): void {
    this.urgent = true;
    this.nudge.nudge();
  }

  /** Resolves once nothing is queued, or when `signal` aborts. */
  idle(signal: AbortSignal): Promise<void> {
    if (this.pending === 0 || signal.aborted) return Promise.resolve();
    this.flushNow();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.idleWaiters.push(done);
    });
  }

  /** The results lane: one visible loop, until the outbox's signal aborts. */
  async runResults(): Promise<void> {
    const { signal } = this.o;
    while (!signal.aborted) {
      if (this.pending === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
        await this.nudge.wait(60_000, signal);
        continue;
      }
      // Results that finish close together travel together: wait out the report period unless urged.
      if (!this.urgent) await this.nudge.wait(this.o.reportMs, signal);
      if (signal.aborted) break;
      const run = this.o.runId();
      if (run === null) {
        await this.nudge.wait(this.o.reportMs, signal);
        continue;
      }
      this.urgent = false;
      if (this.packed.length === 0) this.packed = this.pack(run, this.items.splice(0));
      const sent = await this.sendPacked(signal);
      if (!sent && !signal.aborted) {
        await this.nudge.wait(outagePauseMs(this.failures, 100), signal);
        this.urgent = true; // retry without waiting a report period as well
      }
    }
  }

  /** The heartbeat lane: a SUMMARY whenever nothing went out for a heartbeat period. */
  async runHeartbeats(): Promise<void> {
    const { signal } = this.o;
    while (!signal.aborted) {
      const since = this.now() - this.lastSentMs;
      if (since < this.o.heartbeatMs) {
        await this.heartbeatNudge.wait(this.o.heartbeatMs - since, signal);
        continue;
      }
      const run = this.o.runId();
      if (run === null) {
        await this.heartbeatNudge.wait(this.o.heartbeatMs, signal);
        continue;
      }
      try {
        await this.o.queue.send([encodeMessage(run, { ...this.o.head("CURRENT"), batches: [] })], signal);
        this.lastSentMs = this.now();
      } catch (err) {
        if (signal.aborted) break;
        this.o.log.warn(`heartbeat not sent (next in ${this.o.heartbeatMs} ms): ${describe(err)}`);
        this.lastSentMs = this.now(); // the next one comes a period later
      }
    }
  }

  private pack(run: string, items: Item[]): Packed[] {
    const out: Packed[] = [];
    let results: { receipt: string; result: BatchResult }[] = [];
    const packResults = () => {
      if (results.length === 0) return;
      const rs = results;
      results = [];
      for (const p of packSummaries(
        run,
        this.o.head("CURRENT"),
        rs.map((r) => r.result),
      )) {
        out.push({ body: p.body, completes: p.completes.map((i) => rs[i]?.receipt ?? "") });
      }
    };
    for (const item of items) {
      if (item.type === "result") {
        results.push(item);
      } else {
        packResults();
        out.push({ body: encodeMessage(run, item.body()), completes: [] });
      }
    }
    packResults();
    return out;
  }

  /** Sends the packed messages group by group; a group leaves only once delivered. False on a failure. */
  private async sendPacked(signal: AbortSignal): Promise<boolean> {
    while (this.packed.length > 0) {
      const group = sendGroups(this.packed.map((p) => p.body))[0] ?? [];
      try {
        await this.o.queue.send(group, signal);
      } catch (err) {
        if (signal.aborted) return false;
        this.failures++;
        const results = this.packed.reduce((n, p) => n + p.completes.length, 0);
        this.o.log.warn(
          `report not sent (attempt ${this.failures}; ${this.packed.length} message(s) with ${results} result(s) kept, and ${this.items.length} item(s) behind them): ${describe(err)}`,
        );
        return false;
      }
      this.failures = 0;
      this.lastSentMs = this.now();
      const done = this.packed.splice(0, group.length);
      const receipts = done.flatMap((p) => p.completes);
      if (receipts.length > 0) this.o.onSent(receipts);
    }
    return true;
  }
}
