/**
 * What comes back to the master: the workers' reports on the report queue, and the batches that failed too
 * often in the dead-letter queue. Both are read by one poller that long-polls, turns each message into an
 * event for the phase machine, deletes what it has taken, and outlasts an outage by the one retry policy.
 */
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { decodeMessage } from "../core/messages.ts";
import type { MessageQueue, ReceivedMessage } from "../core/ports.ts";
import { OutageClock, pause } from "../core/retry.ts";
import type { MachineEvent } from "./phase-machine.ts";

/**
 * The master's long polls. They stay far below any request timeout the SDK clients may carry (a long poll that
 * outlived its request timeout would be cut and retried for ever), and short enough that a stop is prompt.
 */
const REPORT_POLL_SEC = 2;
const DEAD_LETTER_POLL_SEC = 5;
/** The pause after a failed poll: the report queue's bounded by `awsDownTimeoutMs`, the dead letters' by the run. */
const REPORT_RETRY_MS = 1_000;
const DEAD_LETTER_RETRY_MS = 2_000;
/** Finding the dead-letter queue from the TOC queue's RedrivePolicy takes this long at most. */
const FIND_DEAD_LETTER_QUEUE_MS = 30_000;

export interface IntakeOptions {
  readonly runId: string;
  readonly emit: (e: MachineEvent) => void;
  readonly now: () => number;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

interface PollOptions {
  readonly queue: MessageQueue;
  readonly waitSec: number;
  readonly retryMs: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** What failed, as the warning says it: "receiving reports failed". */
  readonly failure: string;
  /** Turns a round's messages into events; returns the receipts of those to delete. */
  readonly take: (messages: readonly ReceivedMessage[]) => string[];
  /** When given, the poll ends once the queue has been unreachable past the clock's bound. */
  readonly outage?: {
    readonly clock: OutageClock;
    readonly recovered: (downMs: number) => void;
    readonly down: (err: unknown) => void;
  };
}

/** The one poller: receive, take, delete, until the signal; a failure is warned about and retried after a pause. */
async function pollQueue(o: PollOptions): Promise<void> {
  while (!o.signal.aborted) {
    try {
      const messages = await o.queue.receive({ max: 10, waitSec: o.waitSec }, o.signal);
      const downMs = o.outage?.clock.recovered() ?? null;
      if (downMs !== null) o.outage?.recovered(downMs);
      const receipts = o.take(messages);
      if (receipts.length > 0) await o.queue.delete(receipts);
    } catch (err) {
      if (o.signal.aborted) return;
      if (o.outage?.clock.failed()) {
        o.outage.down(err);
        return;
      }
      o.log.warn(`${o.failure}, retrying: ${describe(err)}`);
      await pause(o.retryMs, o.signal);
    }
  }
}

/**
 * Long-polls the report queue and turns each message into an event; deletes what it has taken. Unreachable
 * for longer than `awsDownMs`, it ends the run with a fatal event.
 */
export function receiveReports(queue: MessageQueue, awsDownMs: number, o: IntakeOptions): Promise<void> {
  const { emit, now } = o;
  return pollQueue({
    queue,
    waitSec: REPORT_POLL_SEC,
    retryMs: REPORT_RETRY_MS,
    signal: o.signal,
    log: o.log,
    failure: "receiving reports failed",
    outage: {
      clock: new OutageClock(awsDownMs, now),
      recovered: (downMs) =>
        o.log.info(`the report queue answers again after ${Math.round(downMs / 1000)} s`),
      down: (err) =>
        emit({
          type: "fatal",
          at: now(),
          reason: `SQS unreachable for ${Math.round(awsDownMs / 1000)} s: ${describe(err)}`,
        }),
    },
    take: (messages) => {
      for (const m of messages) {
        const d = decodeMessage(m.body, {
          expectRun: o.runId,
          accept: ["WORKER_STATE", "SUMMARY", "HOOK", "ERROR_REPORT"],
        });
        const at = now();
        if (!d.ok) emit({ type: "protocol-error", at, reason: d.error.message });
        else if (d.message.type === "WORKER_STATE") emit({ type: "worker-state", at, message: d.message });
        else if (d.message.type === "SUMMARY") emit({ type: "summary", at, message: d.message });
        else if (d.message.type === "HOOK") emit({ type: "hook", at, message: d.message });
        else if (d.message.type === "ERROR_REPORT") {
          emit({
            type: "error-report",
            at,
            worker: d.message.worker,
            errorsSent: d.message.errorsSent,
            protocolErrors: d.message.protocolErrors,
            notes: d.message.notes,
          });
        }
      }
      return messages.map((m) => m.receipt);
    },
  });
}

/**
 * Batches that failed too often land in the dead-letter queue: each of their entries is reported. A message
 * of another run is left for that run; one that cannot be decoded is a protocol error of this run, reported
 * (with the start of its body) and deleted, so that no later run reports it again.
 */
export function drainDeadLetters(queue: MessageQueue, o: IntakeOptions): Promise<void> {
  const { emit, now } = o;
  return pollQueue({
    queue,
    waitSec: DEAD_LETTER_POLL_SEC,
    retryMs: DEAD_LETTER_RETRY_MS,
    signal: o.signal,
    log: o.log,
    failure: "reading the dead-letter queue failed",
    take: (messages) => {
      const take: string[] = [];
      for (const m of messages) {
        const d = decodeMessage(m.body, { expectRun: o.runId, accept: ["TOC_BATCH"] });
        if (!d.ok && d.error.kind === "foreign-run") continue; // another run's: leave it for that run
        take.push(m.receipt);
        if (!d.ok || d.message.type !== "TOC_BATCH") {
          const reason = d.ok ? `${d.message.type} is not a TOC batch` : d.error.message;
          emit({
            type: "protocol-error",
            at: now(),
            reason: `message ${m.id} after ${m.receiveCount} deliveries: ${reason}`,
            source: "dead-letter queue",
          });
          continue;
        }
        emit({
          type: "dead-lettered",
          at: now(),
          batch: d.message.batch,
          phase: d.message.phase,
          paths: d.message.entries.map((e) => e[0]),
          receiveCount: m.receiveCount,
        });
      }
      return take;
    },
  });
}

/** The dead-letter queue the master reads (null without one), and what to tell the user of how it was found. */
export interface FoundDeadLetterQueue {
  readonly queue: MessageQueue | null;
  readonly note: { level: "info" | "warn"; message: string } | null;
}

/**
 * The dead-letter queue named by the settings, or else the one the TOC queue's RedrivePolicy names. Without
 * either, a batch that never gets a result ends the run only at the stall limit: the report says so.
 */
export async function findDeadLetterQueue(ports: {
  readonly deadLetterQueue?: MessageQueue | undefined;
  readonly findDeadLetterQueue?: ((signal?: AbortSignal) => Promise<MessageQueue | null>) | undefined;
}): Promise<FoundDeadLetterQueue> {
  if (ports.deadLetterQueue) return { queue: ports.deadLetterQueue, note: null };
  if (!ports.findDeadLetterQueue) return { queue: null, note: null };
  let found: MessageQueue | null;
  try {
    found = await ports.findDeadLetterQueue(AbortSignal.timeout(FIND_DEAD_LETTER_QUEUE_MS));
  } catch (err) {
    throw new Error(
      `the TOC queue's dead-letter queue cannot be found from its RedrivePolicy (${describe(err)}): give --dead-letter-queue-url`,
      { cause: err },
    );
  }
  const note = found
    ? {
        level: "info" as const,
        message: `reading the dead-letter queue ${found.url} (from the TOC queue's RedrivePolicy)`,
      }
    : {
        level: "warn" as const,
        message:
          "the TOC queue has no dead-letter queue (no RedrivePolicy): a batch that never gets a result ends the run only at the stall limit",
      };
  return { queue: found, note };
}
