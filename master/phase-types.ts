/** The phase machine's data: its settings, state, events and commands (phase-machine.ts is the reducer over them). */
import type {
  BatchResult,
  HookMessage,
  ModeMessage,
  PathIssue,
  Phase,
  ShutdownMessage,
  Stage,
  StopReason,
  SummaryMessage,
  Tally,
  WorkerStateMessage,
  WorkPhase,
} from "../core/messages.ts";
import type { AppendList } from "./append-list.ts";
import type { BatchSet } from "./batch-set.ts";

export interface MachineSettings {
  readonly expectedWorkers: number;
  readonly failfast: boolean;
  /** Rebroadcast of the current mode: late workers join by it and a lost broadcast cannot stall the run. */
  readonly beaconMs: number;
  /** Longest wait for the expected workers to announce themselves. */
  readonly initTimeoutMs: number;
  /** A worker silent this long is declared lost; its unfinished batches come back through SQS. */
  readonly workerTimeoutMs: number;
  /** With work left and no live worker for this long, the run fails with a partial report. */
  readonly noWorkersTimeoutMs: number;
  /**
   * With batches outstanding and no batch result (nor dead letter) for this long, the run fails with a partial
   * report that names them: the bound on a batch that is held for ever or lost without a dead-letter queue.
   */
  readonly stallTimeoutMs: number;
  /** Longest wait for error reports, and for workers to confirm shutdown. */
  readonly errorReportTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
}

export interface WorkerView {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
  readonly controlQueueUrl: string;
  readonly subscriptionArn: string;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  /** The run's phase when the worker was last heard of. */
  readonly lastSeenPhase: Phase;
  readonly state: "INITIALIZED" | "ACTIVE" | "IDLE" | "STOPPED" | "LOST";
  readonly lostAtMs?: number;
  readonly totals: { readonly WRITE: Tally; readonly VALIDATE: Tally };
  readonly peakRssBytes: number;
  /** The worker's own count of its SQS requests, as last reported. */
  readonly sqsRequests: number;
  /** TOC batches it held (received, not yet reported) at its last summary. */
  readonly holding?: number;
  readonly errorsReceived: number;
  readonly errorReport?: { readonly errorsSent: number; readonly notes: readonly string[] };
  /** The outcome of the worker's before-VALIDATE hook, once it sent one (a worker without a hook sends none). */
  readonly hook?: HookView;
  /** How often the worker came back after being declared lost (a new control queue each time). */
  readonly rejoins: number;
  /**
   * Why it said STOPPED, when it said. `spot interruption`: it drained on EC2's notice (finished or put back
   * what it held, reported): counted drained, not lost.
   */
  readonly stopped?: { readonly reason: StopReason; readonly detail: string; readonly atMs: number };
  readonly removed: boolean;
  /**
   * The worker is drained: asked to (`requestedAtMs`), or it said it leaves (an interruption); `doneAtMs` once
   * it said goodbye. A drained worker ends as drained, not lost: nothing it held is lost or redone.
   */
  readonly drain?: DrainView;
}

export interface DrainView {
  readonly requestedAtMs: number;
  readonly reason: string;
  readonly doneAtMs?: number;
}

export interface HookView {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly durationMs: number;
  readonly atMs: number;
}

/** The parts of one batch result received so far from one worker and delivery (see `BatchResult.part`). */
export interface PartAssembly {
  readonly batch: number;
  readonly worker: string;
  readonly receiveCount: number;
  /** How many parts the result has. */
  readonly of: number;
  /** The first part's result without its issues: every later part must carry the same counts. */
  readonly head: Omit<BatchResult, "errors" | "skips" | "part">;
  readonly got: BatchSet;
  readonly errors: AppendList<PathIssue>;
  readonly skips: AppendList<PathIssue>;
}

export interface DispatchView {
  readonly phase: WorkPhase;
  readonly stage: Stage;
  readonly firstBatch: number;
  /** Batches (and entries) sent so far, as SQS acknowledged them; final once `complete`. */
  readonly batches: number;
  readonly entries: number;
  /** Batches (and entries) handed to SQS so far, acknowledged or not: results are taken for these only. */
  readonly issued: number;
  readonly entriesIssued: number;
  /** Bytes of the files handed to SQS so far (what the fleet's forecast counts as left to write). */
  readonly bytesIssued: number;
  readonly complete: boolean;
  /** Distinct batches of this stage reported finished (or dead-lettered), and their entries. */
  readonly done: number;
  readonly entriesDone: number;
}

export interface RunIssue extends PathIssue {
  /** `hook`: a worker's before-VALIDATE hook failed (the path names the worker). */
  readonly phase: "crawl" | "WRITE" | "VALIDATE" | "hook";
}

export type Outcome = "succeeded" | "failed" | "interrupted";

export interface MachineState {
  readonly runId: string;
  readonly settings: MachineSettings;
  readonly phase: Phase;
  readonly startedAtMs: number;
  readonly phaseStartedAtMs: number;
  readonly phaseTimes: Readonly<Partial<Record<Phase, { startMs: number; endMs?: number }>>>;
  readonly workers: Readonly<Record<string, WorkerView>>;
  readonly dispatch: DispatchView | null;
  /** The next unused batch number: one number space for every stage and attempt of the run. */
  readonly nextBatch: number;
  /** Every batch number this master handed to the TOC queue. */
  readonly issued: BatchSet;
  /** Every batch reported done (or dead-lettered) in this master's life. */
  readonly doneBatches: BatchSet;
  /** Results in parts still being gathered, by `batch/worker/receiveCount`: only for batches not yet counted. */
  readonly parts: Readonly<Record<string, PartAssembly>>;
  /** Every entry the crawl found, sent or not. */
  readonly entries: number;
  readonly dirs: number;
  readonly write: Tally;
  readonly validate: Tally;
  /** Appended to in time linear in what is added (an array copied per batch would be quadratic). */
  readonly errors: AppendList<RunIssue>;
  readonly skipped: AppendList<RunIssue>;
  readonly duplicates: number;
  /** Results of batches sent before this master (re)started: their work stands, their counts are not ours. */
  readonly staleResults: number;
  /** The first batch number of this master's life (a resumed run starts above every earlier one). */
  readonly firstBatchOfAttempt: number;
  readonly redelivered: number;
  readonly deadLettered: number;
  readonly protocolErrors: number;
  readonly notes: readonly string[];
  readonly lastBeaconMs: number;
  /** The stall clock: when the current stage last made progress (a batch counted, or work outstanding again). */
  readonly lastProgressMs: number;
  /** Since when no live worker has been there while work was outstanding. */
  readonly noWorkersSinceMs: number | null;
  readonly outcome: Outcome | null;
  readonly failureReason: string | null;
  readonly interrupts: number;
  readonly finished: boolean;
}

export type MachineEvent =
  | { readonly type: "tick"; readonly at: number }
  | { readonly type: "worker-state"; readonly at: number; readonly message: WorkerStateMessage }
  | { readonly type: "summary"; readonly at: number; readonly message: SummaryMessage }
  | { readonly type: "hook"; readonly at: number; readonly message: HookMessage }
  | {
      readonly type: "error-report";
      readonly at: number;
      readonly worker: string;
      readonly errorsSent: number;
      readonly protocolErrors: number;
      readonly notes: readonly string[];
    }
  /**
   * The dispatcher hands batches `[first, first + batches)` to the TOC queue: from now on their results are
   * taken (a worker may finish one before SQS acknowledged the whole send).
   */
  | {
      readonly type: "batches-issued";
      readonly at: number;
      readonly first: number;
      readonly batches: number;
      readonly entries: number;
      /**
       * For each batch, each entry's place in the stage's stream of entries (the batches mix directories): the
       * manifest maps batches back to TOC lines with them.
       */
      readonly places?: readonly (readonly number[])[];
      /** Bytes of the files among them. */
      readonly bytes?: number;
    }
  /** SQS acknowledged the send of batches issued before. */
  | { readonly type: "batches-sent"; readonly at: number; readonly batches: number; readonly entries: number }
  | {
      readonly type: "dispatch-complete";
      readonly at: number;
      readonly batches: number;
      readonly entries: number;
      /** For the WRITE content stage: how many directory entries wait for the dirs stage. */
      readonly dirs: number;
    }
  | {
      readonly type: "crawl-issue";
      readonly at: number;
      readonly issue: PathIssue;
      readonly outcome: "failed" | "skipped";
      /** False for issues that are not entries of their own (a directory that cannot be listed). */
      readonly isEntry: boolean;
    }
  | { readonly type: "dispatch-failed"; readonly at: number; readonly reason: string }
  /** Something outside the protocol ended the run (e.g. every local worker process exited). */
  | { readonly type: "fatal"; readonly at: number; readonly reason: string }
  | {
      readonly type: "dead-lettered";
      readonly at: number;
      readonly batch: number;
      readonly phase: WorkPhase;
      readonly paths: readonly string[];
      readonly receiveCount: number;
    }
  | {
      readonly type: "protocol-error";
      readonly at: number;
      readonly reason: string;
      /** Where the message was read; one from the dead-letter queue is also noted in the report. */
      readonly source?: "report queue" | "dead-letter queue";
    }
  /** Something the report should say about the run (e.g. how the dead-letter queue was found). */
  | { readonly type: "note"; readonly at: number; readonly level: "info" | "warn"; readonly message: string }
  /** Drain these workers (the fleet no longer needs them): each finishes what it holds and says goodbye. */
  | {
      readonly type: "drain";
      readonly at: number;
      readonly workers: readonly string[];
      readonly reason: string;
    }
  | { readonly type: "interrupt"; readonly at: number };

export type Command =
  | { readonly type: "broadcast"; readonly message: BroadcastBody }
  | {
      readonly type: "dispatch";
      readonly phase: WorkPhase;
      readonly stage: Stage;
      readonly firstBatch: number;
    }
  | { readonly type: "stop-dispatch" }
  | { readonly type: "purge-toc" }
  | {
      readonly type: "remove-worker-queue";
      readonly worker: string;
      readonly queueUrl: string;
      readonly subscriptionArn: string;
    }
  | { readonly type: "log"; readonly level: "info" | "warn" | "error"; readonly message: string }
  | { readonly type: "finish" };

export type BroadcastBody = Omit<ModeMessage, "v" | "run" | "sentAtMs"> | Omit<ShutdownMessage, "v" | "run">;

export interface StepResult {
  readonly state: MachineState;
  readonly commands: readonly Command[];
}

/** Where a resumed run picks up: when it first started, and the batch numbers it may use. */
export interface Resumption {
  readonly startedAtMs: number;
  readonly firstBatch: number;
  readonly note: string;
}
