/**
 * The worker session's data: its settings, state, events and commands. Shared by the reducer (`session.ts`) and
 * how the session ends (`session-leaving.ts`), which both import it and neither the other's types.
 */

import type {
  BatchResult,
  Decoded,
  MessageBody,
  Phase,
  Tally,
  TocBatchMessage,
  WorkPhase,
} from "../core/messages.ts";
import type { SpotNotice } from "../core/ports.ts";

/** EC2's notice, as the metadata service gives it (`spot/instance-action`). */
export type InterruptionNotice = SpotNotice;

export interface InterruptionState extends InterruptionNotice {
  readonly noticedAtMs: number;
  /** Past this, what is still running is put back (visibility 0) and the worker ends. */
  readonly drainUntilMs: number;
}

export interface SessionSettings {
  readonly workerId: string;
  /** A before-VALIDATE hook is configured: no VALIDATE check before it has run and succeeded. */
  readonly hasHook: boolean;
  /** No MODE from the master for this long (after a poll that could have brought one): release and exit. */
  readonly masterTimeoutMs: number;
  /** After a rejoin, a MODE that still lists this worker lost is answered by announcing again, not rejoining. */
  readonly rejoinGraceMs: number;
  /** How long TOC reads pause after a message of another run was put back. */
  readonly foreignPauseMs: number;
  /** After a Spot interruption notice: how long the batches in hand may take before the rest is put back. */
  readonly interruptionDrainMs: number;
}

/** none: no hook configured; pending: to run before the next VALIDATE check. */
export type HookState = "none" | "pending" | "running" | "ok" | "failed";

export interface HeldBatch {
  readonly batch: number;
  readonly phase: WorkPhase;
  readonly receiveCount: number;
  /** running: a runner works on it; reporting: its result is in the outbox, its message not yet deleted. */
  readonly status: "running" | "reporting";
}

export interface SessionEnd {
  readonly why: "shutdown" | "stopped" | "master-silent" | "interrupted";
  readonly reason: string;
  readonly exitCode: number;
}

export interface SessionState {
  readonly settings: SessionSettings;
  readonly runId: string | null;
  /** The master's phase as last heard. */
  readonly mode: Phase;
  readonly lastModeSentAtMs: number;
  /** The master has listed this worker (or it joined a run already past INITIALIZING). */
  readonly seen: boolean;
  /** When the master was last heard (a MODE), or the session (re)started listening. */
  readonly lastHeardMs: number;
  /** When the latest control poll began: the master counts as silent only after a poll begun past the bound. */
  readonly lastPollStartMs: number;
  readonly control: "listening" | "rejoining";
  readonly rejoins: number;
  readonly lastRejoinMs: number | null;
  readonly rejoinRetryAtMs: number | null;
  /** After a rejoin: false until a MODE no longer lists this worker lost. */
  readonly takenBack: boolean;
  readonly hook: HookState;
  /** Every TOC batch held (hidden from other workers), by receipt. */
  readonly held: Readonly<Record<string, HeldBatch>>;
  readonly totals: { readonly WRITE: Tally; readonly VALIDATE: Tally };
  /** Per-entry errors handed to the outbox (it sends in order and drops nothing). */
  readonly errorsQueued: number;
  readonly protocolErrors: number;
  /** Messages of another run put back on the TOC queue. */
  readonly foreignReleased: number;
  /** Ids of bad messages counted already (one count per message, however often it comes back). */
  readonly countedIds: readonly string[];
  readonly tocPausedUntilMs: number;
  /** TOC receives in a row that brought another run's messages: each pauses reading longer. */
  readonly foreignStreak: number;
  readonly notes: readonly string[];
  readonly errorReport: "none" | "due" | "queued";
  /** First signal: take no new work, drain, report, then end. */
  readonly stopping: string | null;
  /** EC2's Spot interruption notice, once heard: the session drains to its bound. */
  readonly interruption: InterruptionState | null;
  readonly end: SessionEnd | null;
}

export interface ControlItem {
  readonly id: string;
  readonly decoded: Decoded;
}

export interface TocItem {
  readonly id: string;
  readonly receipt: string;
  readonly receiveCount: number;
  readonly decoded: Decoded;
}

export interface HookOutcome {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly outputTail: string;
  readonly durationMs: number;
}

export type SessionEvent =
  /** A control poll begun at `startedAt` brought these messages (possibly none). */
  | {
      readonly type: "control";
      readonly at: number;
      readonly startedAt: number;
      readonly items: ControlItem[];
    }
  | {
      readonly type: "control-failed";
      readonly at: number;
      readonly startedAt: number;
      /** The control queue does not exist any more (the master removed it). */
      readonly gone: boolean;
      readonly error: string;
    }
  | { readonly type: "rejoined"; readonly at: number; readonly queueUrl: string }
  | { readonly type: "rejoin-failed"; readonly at: number; readonly error: string }
  | { readonly type: "toc"; readonly at: number; readonly items: TocItem[] }
  | {
      readonly type: "batch-done";
      readonly at: number;
      readonly receipt: string;
      readonly result: BatchResult;
    }
  /** A runner gave its batch up unfinished (work aborted): its message is released or comes back. */
  | { readonly type: "batch-abandoned"; readonly at: number; readonly receipt: string }
  | { readonly type: "hook-done"; readonly at: number; readonly outcome: HookOutcome }
  /** The outbox delivered every part of these results. */
  | { readonly type: "results-sent"; readonly at: number; readonly receipts: readonly string[] }
  | { readonly type: "tick"; readonly at: number }
  | { readonly type: "stop"; readonly at: number; readonly reason: string }
  /** The instance metadata service gave a Spot interruption notice. */
  | { readonly type: "interruption"; readonly at: number; readonly notice: InterruptionNotice }
  /** Second signal, or a drain past its bound: put back what is held and end now. */
  | { readonly type: "abort"; readonly at: number; readonly reason: string };

export type Command =
  | { readonly type: "announce" }
  | {
      readonly type: "run-batch";
      readonly receipt: string;
      readonly message: TocBatchMessage;
      readonly receiveCount: number;
    }
  /** Visibility 0: the message is at once visible to every worker again. */
  | { readonly type: "release"; readonly receipts: readonly string[]; readonly why: string }
  /** Into the outbox: reported in order, then `results-sent`. */
  | { readonly type: "report"; readonly receipt: string; readonly result: BatchResult }
  | { readonly type: "delete"; readonly receipts: readonly string[] }
  /** Into the outbox, in order behind every result already there. */
  | { readonly type: "send"; readonly body: Extract<MessageBody, { type: "HOOK" | "ERROR_REPORT" }> }
  | { readonly type: "final-summary"; readonly phase: Phase }
  | { readonly type: "run-hook" }
  | { readonly type: "rejoin" }
  /** Cancel the work in hand: the run is over or the worker leaves. */
  | { readonly type: "abort-work"; readonly reason: string }
  | { readonly type: "log"; readonly level: "info" | "warn" | "error"; readonly message: string }
  /** Stop reading the TOC queue and wind down (the commands after it in the same step still run). */
  | { readonly type: "end"; readonly end: SessionEnd };

export interface StepResult {
  readonly state: SessionState;
  readonly commands: Command[];
}
