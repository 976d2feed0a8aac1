/**
 * The master as a reducer: `step(state, event) → { state, commands }`. Pure: no I/O, no clock (every event
 * carries its time `at`). The run loop feeds it events and performs the commands through the ports.
 *
 * Phases end by counts, never by idle time: the dispatcher tells how many batches a stage sent, workers report
 * each finished batch (once, before deleting it), and a stage is over when every sent batch is accounted for.
 */
import {
  type BatchResult,
  emptyTally,
  type ModeMessage,
  type PathIssue,
  type Phase,
  type ShutdownMessage,
  type Stage,
  type SummaryMessage,
  type Tally,
  type WorkerStateMessage,
  type WorkPhase,
} from "../core/messages.ts";
import { BatchSet } from "./batch-set.ts";

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
  readonly errorsReceived: number;
  readonly errorReport?: { readonly errorsSent: number; readonly notes: readonly string[] };
  readonly removed: boolean;
}

export interface DispatchView {
  readonly phase: WorkPhase;
  readonly stage: Stage;
  readonly firstBatch: number;
  /** Batches (and entries) sent so far; final once `complete`. */
  readonly batches: number;
  readonly entries: number;
  readonly complete: boolean;
  /** Distinct batches of this stage reported finished. */
  readonly done: number;
}

export interface RunIssue extends PathIssue {
  readonly phase: "crawl" | "WRITE" | "VALIDATE";
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
  readonly nextBatch: number;
  /** Every batch reported done (or dead-lettered) in this master's life. */
  readonly doneBatches: BatchSet;
  /** Every entry the crawl found, sent or not. */
  readonly entries: number;
  readonly dirs: number;
  readonly write: Tally;
  readonly validate: Tally;
  readonly errors: readonly RunIssue[];
  readonly skipped: readonly RunIssue[];
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
  | {
      readonly type: "error-report";
      readonly at: number;
      readonly worker: string;
      readonly errorsSent: number;
      readonly protocolErrors: number;
      readonly notes: readonly string[];
    }
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
  | { readonly type: "protocol-error"; readonly at: number; readonly reason: string }
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

export function initialState(
  runId: string,
  settings: MachineSettings,
  at: number,
  resumed?: Resumption,
): MachineState {
  return {
    runId,
    settings,
    phase: "INITIALIZING",
    startedAtMs: resumed?.startedAtMs ?? at,
    phaseStartedAtMs: at,
    phaseTimes: { INITIALIZING: { startMs: at } },
    workers: {},
    dispatch: null,
    nextBatch: resumed?.firstBatch ?? 0,
    firstBatchOfAttempt: resumed?.firstBatch ?? 0,
    staleResults: 0,
    doneBatches: BatchSet.empty,
    entries: 0,
    dirs: 0,
    write: emptyTally(),
    validate: emptyTally(),
    errors: [],
    skipped: [],
    duplicates: 0,
    redelivered: 0,
    deadLettered: 0,
    protocolErrors: 0,
    notes: resumed ? [resumed.note] : [],
    lastBeaconMs: Number.NEGATIVE_INFINITY,
    noWorkersSinceMs: null,
    outcome: null,
    failureReason: null,
    interrupts: 0,
    finished: false,
  };
}

/** The commands to run when the loop starts: the first beacon. */
export function start(state: MachineState): StepResult {
  return { state: { ...state, lastBeaconMs: state.startedAtMs }, commands: [modeBroadcast(state)] };
}

export function step(state: MachineState, event: MachineEvent): StepResult {
  if (state.finished) return { state, commands: [] };
  const out: Command[] = [];
  let s = state;
  switch (event.type) {
    case "tick":
      s = onTick(s, event.at, out);
      break;
    case "worker-state":
      s = onWorkerState(s, event.message, event.at, out);
      break;
    case "summary":
      s = onSummary(s, event.message, event.at, out);
      break;
    case "error-report":
      s = touchWorker(s, event.worker, event.at, (w) => ({
        ...w,
        errorReport: { errorsSent: event.errorsSent, notes: event.notes },
      }));
      if (s.workers[event.worker] === undefined) s = { ...s, protocolErrors: s.protocolErrors + 1 };
      break;
    case "batches-sent":
      if (s.dispatch) {
        s = {
          ...s,
          dispatch: {
            ...s.dispatch,
            batches: s.dispatch.batches + event.batches,
            entries: s.dispatch.entries + event.entries,
          },
        };
      }
      break;
    case "dispatch-complete":
      if (s.dispatch) {
        const { firstBatch } = s.dispatch;
        // Only batches of this stage's range count; anything beyond it was never sent by us.
        const done = s.doneBatches.countIn(firstBatch, firstBatch + event.batches);
        s = {
          ...s,
          dispatch: { ...s.dispatch, batches: event.batches, entries: event.entries, complete: true, done },
          nextBatch: s.dispatch.firstBatch + event.batches,
        };
        if (s.dispatch?.phase === "WRITE") {
          s = { ...s, entries: s.entries + event.entries };
          if (s.dispatch?.stage === "content") s = { ...s, dirs: event.dirs };
        }
      }
      break;
    case "crawl-issue": {
      const issue: RunIssue = { ...event.issue, phase: "crawl" };
      if (event.outcome === "failed") {
        s = { ...s, errors: [...s.errors, issue] };
        if (event.isEntry) s = { ...s, entries: s.entries + 1, write: add(s.write, { failed: 1 }) };
      } else {
        s = { ...s, skipped: [...s.skipped, issue] };
        if (event.isEntry) s = { ...s, entries: s.entries + 1, write: add(s.write, { skipped: 1 }) };
      }
      if (event.outcome === "failed" && s.settings.failfast)
        s = enterErrorReport(s, event.at, out, "failfast");
      break;
    }
    case "dispatch-failed":
      out.push({ type: "log", level: "error", message: `the TOC could not be sent: ${event.reason}` });
      s = fail(s, event.at, `the TOC could not be sent: ${event.reason}`, out);
      break;
    case "fatal":
      s = fail(s, event.at, event.reason, out);
      break;
    case "dead-lettered":
      s = onDeadLettered(s, event, out);
      break;
    case "protocol-error":
      s = { ...s, protocolErrors: s.protocolErrors + 1 };
      out.push({ type: "log", level: "warn", message: `ignored a message: ${event.reason}` });
      break;
    case "interrupt":
      s = onInterrupt(s, event.at, out);
      break;
    default: {
      const never: never = event;
      throw new Error(`unhandled event ${JSON.stringify(never)}`);
    }
  }
  s = advance(s, event.at, out);
  return { state: s, commands: out };
}

// ---- events ----------------------------------------------------------------------------------------------

function onTick(s: MachineState, at: number, out: Command[]): MachineState {
  let next = s;
  // Liveness: a worker that stopped talking is lost; its queue is removed, its batches come back via SQS.
  for (const w of Object.values(next.workers)) {
    if ((w.state === "STOPPED" || w.state === "LOST") && w.removed) continue;
    if (w.state !== "STOPPED" && w.state !== "LOST" && at - w.lastSeenMs > next.settings.workerTimeoutMs) {
      const lost: WorkerView = { ...w, state: "LOST", lostAtMs: at, removed: true };
      next = { ...next, workers: { ...next.workers, [w.id]: lost } };
      const note = `worker ${w.id} on ${w.host} vanished in ${w.lastSeenPhase}: last heard of at ${iso(w.lastSeenMs)}, declared lost at ${iso(at)} in ${next.phase}`;
      next = { ...next, notes: [...next.notes, note] };
      out.push({ type: "log", level: "warn", message: note });
      out.push(removeQueue(w));
    }
  }
  // No live worker while work is outstanding: wait a while for new ones, then fail cleanly.
  const working = next.phase === "WRITE" || next.phase === "VALIDATE";
  if (working && liveWorkers(next).length === 0) {
    if (next.noWorkersSinceMs === null) next = { ...next, noWorkersSinceMs: at };
    else if (at - next.noWorkersSinceMs > next.settings.noWorkersTimeoutMs) {
      next = fail(
        next,
        at,
        `no live worker for ${Math.round(next.settings.noWorkersTimeoutMs / 1000)} s`,
        out,
      );
    }
  } else if (next.noWorkersSinceMs !== null) {
    next = { ...next, noWorkersSinceMs: null };
  }
  if (next.phase === "INITIALIZING" && at - next.startedAtMs > next.settings.initTimeoutMs) {
    const n = liveWorkers(next).length;
    if (n === 0) {
      next = fail(
        next,
        at,
        `no worker announced itself within ${Math.round(next.settings.initTimeoutMs / 1000)} s`,
        out,
      );
    } else {
      const note = `only ${n} of ${next.settings.expectedWorkers} workers announced themselves in time; going on with ${n}`;
      next = { ...next, notes: [...next.notes, note] };
      out.push({ type: "log", level: "warn", message: note });
      next = enterWrite(next, at, out);
    }
  }
  if (next.phase === "ERROR_REPORT" && at - next.phaseStartedAtMs > next.settings.errorReportTimeoutMs) {
    const missing = liveWorkers(next)
      .filter((w) => !w.errorReport)
      .map((w) => w.id);
    const note = `no error report from ${missing.join(", ")} within ${Math.round(next.settings.errorReportTimeoutMs / 1000)} s`;
    next = { ...next, notes: [...next.notes, note] };
    out.push({ type: "log", level: "warn", message: note });
    next = enterShutdown(next, at, out, "run finished");
  }
  if (next.phase === "SHUTDOWN" && at - next.phaseStartedAtMs > next.settings.shutdownTimeoutMs) {
    next = finish(next, at, out);
  }
  if (!next.finished && at - next.lastBeaconMs >= next.settings.beaconMs) {
    out.push(modeBroadcast(next));
    next = { ...next, lastBeaconMs: at };
  }
  return next;
}

function onWorkerState(s: MachineState, m: WorkerStateMessage, at: number, out: Command[]): MachineState {
  const existing = s.workers[m.worker];
  const base: WorkerView = existing ?? {
    id: m.worker,
    host: m.host,
    pid: m.pid,
    concurrency: m.concurrency,
    controlQueueUrl: m.controlQueueUrl,
    subscriptionArn: m.subscriptionArn,
    firstSeenMs: at,
    lastSeenMs: at,
    lastSeenPhase: s.phase,
    state: "INITIALIZED",
    totals: { WRITE: emptyTally(), VALIDATE: emptyTally() },
    peakRssBytes: 0,
    sqsRequests: 0,
    errorsReceived: 0,
    removed: false,
  };
  if (!existing) out.push({ type: "log", level: "info", message: `worker ${m.worker} on ${m.host} joined` });
  if (existing?.state === "LOST") {
    out.push({ type: "log", level: "warn", message: `worker ${m.worker} is back after being declared lost` });
  }
  const state: WorkerView["state"] =
    m.state === "INITIALIZED" && s.phase !== "INITIALIZING" ? "ACTIVE" : m.state;
  let next: MachineState = {
    ...s,
    workers: {
      ...s.workers,
      [m.worker]: { ...base, lastSeenMs: at, lastSeenPhase: s.phase, state, removed: false },
    },
  };
  if (m.state === "INITIALIZED" && !existing) {
    // Acknowledge at once so the worker stops re-announcing, and (after INITIALIZING) let it join the work.
    out.push(modeBroadcast(next));
    next = { ...next, lastBeaconMs: at };
  }
  if (m.state === "STOPPED") next = markRemoved(next, m.worker);
  return next;
}

function onSummary(s: MachineState, m: SummaryMessage, at: number, out: Command[]): MachineState {
  let next = touchWorker(s, m.worker, at, (w) => ({
    ...w,
    state: w.state === "INITIALIZED" || w.state === "LOST" ? "ACTIVE" : w.state,
    totals: m.totals,
    peakRssBytes: Math.max(w.peakRssBytes, m.rssBytes),
    sqsRequests: Math.max(w.sqsRequests, m.sqsRequests),
  }));
  if (next.workers[m.worker] === undefined) {
    // A worker we never saw announce itself (e.g. the master restarted): it works for this run, so count it.
    out.push({ type: "log", level: "warn", message: `summary from unannounced worker ${m.worker}` });
  }
  let newFailures = 0;
  for (const r of m.batches) {
    const counted = countBatch(next, r, m.worker, out);
    next = counted.state;
    newFailures += counted.failures;
  }
  if (newFailures > 0 && next.settings.failfast && (next.phase === "WRITE" || next.phase === "VALIDATE")) {
    next = enterErrorReport(next, at, out, "failfast");
  }
  return next;
}

function countBatch(
  s: MachineState,
  r: BatchResult,
  worker: string,
  out: Command[],
): { state: MachineState; failures: number } {
  if (s.doneBatches.has(r.batch)) return { state: { ...s, duplicates: s.duplicates + 1 }, failures: 0 };
  if (r.batch < s.firstBatchOfAttempt)
    return { state: { ...s, staleResults: s.staleResults + 1 }, failures: 0 };
  const d = s.dispatch;
  if (
    !d ||
    r.batch < d.firstBatch ||
    d.phase !== r.phase ||
    (d.complete && r.batch >= d.firstBatch + d.batches)
  ) {
    out.push({
      type: "log",
      level: "warn",
      message: `result for batch ${r.batch} from ${worker} is not of this stage`,
    });
    return { state: { ...s, protocolErrors: s.protocolErrors + 1 }, failures: 0 };
  }
  const tally = r.phase === "WRITE" ? "write" : "validate";
  const errors = r.errors.map((e): RunIssue => ({ ...e, phase: r.phase }));
  const skips = r.skips.map((e): RunIssue => ({ ...e, phase: r.phase }));
  let next: MachineState = {
    ...s,
    doneBatches: s.doneBatches.add(r.batch),
    dispatch: { ...d, done: d.done + 1 },
    [tally]: add(s[tally], {
      ok: r.ok,
      failed: r.failed,
      skipped: r.skipped,
      unchanged: r.unchanged,
      bytes: r.bytes,
    }),
    errors: errors.length ? [...s.errors, ...errors] : s.errors,
    skipped: skips.length ? [...s.skipped, ...skips] : s.skipped,
    redelivered: s.redelivered + (r.receiveCount > 1 ? 1 : 0),
  };
  next = touchWorker(next, worker, next.workers[worker]?.lastSeenMs ?? 0, (w) => ({
    ...w,
    errorsReceived: w.errorsReceived + r.errors.length,
  }));
  return { state: next, failures: r.failed };
}

function onDeadLettered(
  s: MachineState,
  e: Extract<MachineEvent, { type: "dead-lettered" }>,
  out: Command[],
): MachineState {
  if (s.doneBatches.has(e.batch)) return s;
  const d = s.dispatch;
  const reason = `its batch ${e.batch} went to the dead-letter queue after ${e.receiveCount} deliveries without a result`;
  out.push({
    type: "log",
    level: "error",
    message: `batch ${e.batch} (${e.paths.length} entries) dead-lettered`,
  });
  const errors = e.paths.map((path): RunIssue => ({ path, reason, phase: e.phase }));
  const tally = e.phase === "WRITE" ? "write" : "validate";
  const inStage = d !== null && d.phase === e.phase && e.batch >= d.firstBatch;
  let next: MachineState = {
    ...s,
    doneBatches: s.doneBatches.add(e.batch),
    dispatch: inStage && d ? { ...d, done: d.done + 1 } : d,
    [tally]: add(s[tally], { failed: e.paths.length }),
    errors: [...s.errors, ...errors],
    deadLettered: s.deadLettered + 1,
  };
  if (next.settings.failfast) next = enterErrorReport(next, e.at, out, "failfast");
  return next;
}

function onInterrupt(s: MachineState, at: number, out: Command[]): MachineState {
  const interrupts = s.interrupts + 1;
  let next: MachineState = { ...s, interrupts, outcome: "interrupted", failureReason: "interrupted" };
  if (interrupts >= 2 || s.phase === "SHUTDOWN") {
    out.push({ type: "log", level: "warn", message: "second interrupt: stopping now" });
    return finish(next, at, out);
  }
  out.push({
    type: "log",
    level: "warn",
    message: "interrupted: stopping the run (interrupt again to abort)",
  });
  out.push({ type: "stop-dispatch" }, { type: "purge-toc" });
  next = enterShutdown(next, at, out, "interrupted");
  return next;
}

// ---- transitions -----------------------------------------------------------------------------------------

/** Moves the run forward whenever the counts say a stage or phase is over. */
function advance(s: MachineState, at: number, out: Command[]): MachineState {
  let next = s;
  if (next.finished) return next;
  if (next.phase === "INITIALIZING" && liveWorkers(next).length >= next.settings.expectedWorkers) {
    next = enterWrite(next, at, out);
  }
  const d = next.dispatch;
  if ((next.phase === "WRITE" || next.phase === "VALIDATE") && d && d.complete && d.done >= d.batches) {
    if (d.phase === "WRITE" && d.stage === "content" && next.dirs > 0) {
      next = startDispatch(next, "WRITE", "dirs", out);
    } else if (d.phase === "WRITE") {
      out.push(logPhaseEnd(next, "WRITE"));
      if (next.write.ok + next.write.unchanged > 0) next = enterValidate(next, at, out);
      else next = afterValidate(next, at, out);
    } else {
      out.push(logPhaseEnd(next, "VALIDATE"));
      next = afterValidate(next, at, out);
    }
  }
  if (next.phase === "ERROR_REPORT" && liveWorkers(next).every((w) => w.errorReport)) {
    next = enterShutdown(next, at, out, "run finished");
  }
  if (next.phase === "SHUTDOWN" && liveWorkers(next).length === 0) {
    next = finish(next, at, out);
  }
  return next;
}

function afterValidate(s: MachineState, at: number, out: Command[]): MachineState {
  if (hasFailures(s)) return enterErrorReport(s, at, out, "failures");
  return enterShutdown({ ...s, outcome: s.outcome ?? "succeeded" }, at, out, "run finished");
}

function enterWrite(s: MachineState, at: number, out: Command[]): MachineState {
  let next = setPhase(s, "WRITE", at);
  next = activateWorkers(next);
  out.push(modeBroadcast(next));
  next = { ...next, lastBeaconMs: at };
  return startDispatch(next, "WRITE", "content", out);
}

function enterValidate(s: MachineState, at: number, out: Command[]): MachineState {
  let next = setPhase(s, "VALIDATE", at);
  out.push(modeBroadcast(next));
  next = { ...next, lastBeaconMs: at };
  return startDispatch(next, "VALIDATE", "content", out);
}

function enterErrorReport(
  s: MachineState,
  at: number,
  out: Command[],
  why: "failfast" | "failures",
): MachineState {
  if (s.phase === "ERROR_REPORT" || s.phase === "SHUTDOWN") return s;
  if (why === "failfast") {
    out.push({ type: "log", level: "warn", message: "failfast: a failure was reported, stopping the copy" });
    out.push({ type: "stop-dispatch" }, { type: "purge-toc" });
  }
  let next = setPhase(s, "ERROR_REPORT", at);
  next = {
    ...next,
    outcome: "failed",
    failureReason: next.failureReason ?? (why === "failfast" ? "failfast" : null),
  };
  out.push(modeBroadcast(next));
  return { ...next, lastBeaconMs: at };
}

function enterShutdown(s: MachineState, at: number, out: Command[], reason: string): MachineState {
  if (s.phase === "SHUTDOWN") return s;
  let next = setPhase(s, "SHUTDOWN", at);
  if (next.outcome === null) next = { ...next, outcome: hasFailures(next) ? "failed" : "succeeded" };
  out.push({ type: "broadcast", message: { type: "SHUTDOWN", reason } });
  return { ...next, lastBeaconMs: at };
}

function fail(s: MachineState, at: number, reason: string, out: Command[]): MachineState {
  const next: MachineState = { ...s, outcome: "failed", failureReason: s.failureReason ?? reason };
  out.push({ type: "log", level: "error", message: `run failed: ${reason}` });
  out.push({ type: "stop-dispatch" });
  return enterShutdown(next, at, out, `run failed: ${reason}`);
}

function finish(s: MachineState, at: number, out: Command[]): MachineState {
  for (const w of Object.values(s.workers)) {
    if (!w.removed) out.push(removeQueue(w));
  }
  const workers = Object.fromEntries(Object.entries(s.workers).map(([k, w]) => [k, { ...w, removed: true }]));
  const times = { ...s.phaseTimes };
  const cur = times[s.phase];
  if (cur && cur.endMs === undefined) times[s.phase] = { ...cur, endMs: at };
  out.push({ type: "finish" });
  return {
    ...s,
    workers,
    phaseTimes: times,
    outcome: s.outcome ?? (hasFailures(s) ? "failed" : "succeeded"),
    finished: true,
  };
}

function startDispatch(s: MachineState, phase: WorkPhase, stage: Stage, out: Command[]): MachineState {
  out.push({ type: "dispatch", phase, stage, firstBatch: s.nextBatch });
  return {
    ...s,
    dispatch: { phase, stage, firstBatch: s.nextBatch, batches: 0, entries: 0, complete: false, done: 0 },
  };
}

function setPhase(s: MachineState, phase: Phase, at: number): MachineState {
  const times = { ...s.phaseTimes };
  const cur = times[s.phase];
  if (cur && cur.endMs === undefined) times[s.phase] = { ...cur, endMs: at };
  times[phase] = { startMs: at };
  return { ...s, phase, phaseStartedAtMs: at, phaseTimes: times };
}

// ---- helpers ---------------------------------------------------------------------------------------------

export function liveWorkers(s: MachineState): WorkerView[] {
  return Object.values(s.workers).filter((w) => w.state !== "LOST" && w.state !== "STOPPED");
}

export function hasFailures(s: MachineState): boolean {
  return s.errors.length > 0 || s.write.failed > 0 || s.validate.failed > 0;
}

function activateWorkers(s: MachineState): MachineState {
  const workers = Object.fromEntries(
    Object.entries(s.workers).map(([k, w]) => [
      k,
      w.state === "INITIALIZED" ? { ...w, state: "ACTIVE" as const } : w,
    ]),
  );
  return { ...s, workers };
}

function touchWorker(
  s: MachineState,
  id: string,
  at: number,
  f: (w: WorkerView) => WorkerView,
): MachineState {
  const w = s.workers[id];
  if (!w) return s;
  const updated = f({ ...w, lastSeenMs: Math.max(w.lastSeenMs, at), lastSeenPhase: s.phase });
  return { ...s, workers: { ...s.workers, [id]: updated } };
}

function markRemoved(s: MachineState, id: string): MachineState {
  const w = s.workers[id];
  if (!w) return s;
  return { ...s, workers: { ...s.workers, [id]: { ...w, state: "STOPPED", removed: true } } };
}

function removeQueue(w: WorkerView): Command {
  return {
    type: "remove-worker-queue",
    worker: w.id,
    queueUrl: w.controlQueueUrl,
    subscriptionArn: w.subscriptionArn,
  };
}

function modeBroadcast(s: MachineState): Command {
  if (s.phase === "SHUTDOWN") {
    return { type: "broadcast", message: { type: "SHUTDOWN", reason: s.failureReason ?? "run finished" } };
  }
  const known = s.phase === "INITIALIZING" ? Object.keys(s.workers) : [];
  return {
    type: "broadcast",
    message: { type: "MODE", phase: s.phase, known, failfast: s.settings.failfast },
  };
}

function logPhaseEnd(s: MachineState, phase: WorkPhase): Command {
  const t = phase === "WRITE" ? s.write : s.validate;
  return {
    type: "log",
    level: "info",
    message: `${phase} done: ${t.ok} ok, ${t.failed} failed, ${t.skipped} skipped, ${t.unchanged} unchanged`,
  };
}

function add(t: Tally, d: Partial<Tally>): Tally {
  return {
    ok: t.ok + (d.ok ?? 0),
    failed: t.failed + (d.failed ?? 0),
    skipped: t.skipped + (d.skipped ?? 0),
    unchanged: t.unchanged + (d.unchanged ?? 0),
    bytes: t.bytes + (d.bytes ?? 0),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
