/**
 * The master as a reducer: `step(state, event) → { state, commands }`. Pure: no I/O, no clock (every event
 * carries its time `at`). The run loop feeds it events and performs the commands through the ports.
 *
 * Phases end by counts, never by idle time: the dispatcher tells how many batches a stage sent, workers report
 * each finished batch (once, before deleting it), and a stage is over when every sent batch is accounted for.
 * Every wait still has a bound: a silent worker is declared lost, a stage without a result for
 * `stallTimeoutMs` fails the run, and so does a VALIDATE that no live worker can do (every hook failed).
 */
import {
  emptyTally,
  type HookMessage,
  type SummaryMessage,
  type WorkerStateMessage,
} from "../core/messages.ts";
import { AppendList } from "./append-list.ts";
import { BatchSet } from "./batch-set.ts";
import { onBatchesIssued, onDeadLettered, takeResult } from "./phase-results.ts";
import {
  add,
  advance,
  enterErrorReport,
  enterShutdown,
  enterWrite,
  fail,
  failStalled,
  finish,
  iso,
  lastLines,
  liveWorkers,
  markRemoved,
  modeBroadcast,
  onInterrupt,
  outstanding,
  protocolError,
  removeQueue,
  seconds,
  touchWorker,
} from "./phase-transitions.ts";
import type {
  Command,
  HookView,
  MachineEvent,
  MachineSettings,
  MachineState,
  Resumption,
  RunIssue,
  StepResult,
  WorkerView,
} from "./phase-types.ts";

export type {
  BroadcastBody,
  Command,
  DispatchView,
  HookView,
  MachineEvent,
  MachineSettings,
  MachineState,
  Outcome,
  PartAssembly,
  Resumption,
  RunIssue,
  StepResult,
  WorkerView,
} from "./phase-types.ts";

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
    issued: BatchSet.empty,
    doneBatches: BatchSet.empty,
    parts: {},
    entries: 0,
    dirs: 0,
    write: emptyTally(),
    validate: emptyTally(),
    errors: AppendList.empty(),
    skipped: AppendList.empty(),
    duplicates: 0,
    redelivered: 0,
    deadLettered: 0,
    protocolErrors: 0,
    notes: resumed ? [resumed.note] : [],
    lastBeaconMs: Number.NEGATIVE_INFINITY,
    lastProgressMs: at,
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
    case "hook":
      s = onHook(s, event.message, event.at, out);
      break;
    case "error-report":
      s = touchWorker(s, event.worker, event.at, (w) => ({
        ...w,
        errorReport: { errorsSent: event.errorsSent, notes: event.notes },
      }));
      if (s.workers[event.worker] === undefined) s = { ...s, protocolErrors: s.protocolErrors + 1 };
      break;
    case "batches-issued":
      s = onBatchesIssued(s, event, out);
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
      s = onDispatchComplete(s, event, out);
      break;
    case "crawl-issue":
      s = onCrawlIssue(s, event, out);
      break;
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
      s = protocolError(s, event.reason, out, event.source);
      break;
    case "note":
      s = { ...s, notes: [...s.notes, event.message] };
      out.push({ type: "log", level: event.level, message: event.message });
      break;
    case "interrupt":
      s = onInterrupt(s, event.at, out);
      break;
    case "drain":
      s = onDrain(s, event, out);
      break;
    default: {
      const never: never = event;
      throw new Error(`unhandled event ${JSON.stringify(never)}`);
    }
  }
  s = advance(s, event.at, out);
  return { state: s, commands: out };
}

/** The dispatcher's count of a stage, checked against what it issued; the stage's batches are all known now. */
function onDispatchComplete(
  state: MachineState,
  event: Extract<MachineEvent, { type: "dispatch-complete" }>,
  out: Command[],
): MachineState {
  let s = state;
  if (s.dispatch) {
    const d = s.dispatch;
    if (event.batches !== d.issued || event.entries !== d.entriesIssued) {
      // Cannot happen with our dispatcher; said loudly rather than trusted silently.
      out.push({
        type: "log",
        level: "error",
        message: `the dispatcher counts ${event.batches} batches (${event.entries} entries) sent in ${d.phase} ${d.stage}, but issued ${d.issued} (${d.entriesIssued})`,
      });
    }
    // Only batches of this stage's range count; anything beyond it was never sent by us.
    const done = s.doneBatches.countIn(d.firstBatch, d.firstBatch + event.batches);
    s = {
      ...s,
      dispatch: { ...d, batches: event.batches, entries: event.entries, complete: true, done },
      nextBatch: Math.max(s.nextBatch, d.firstBatch + event.batches),
    };
    // The directories the crawl found are entries now, sent or not (they go in the dirs stage).
    if (d.phase === "WRITE" && d.stage === "content")
      s = { ...s, dirs: event.dirs, entries: s.entries + event.dirs };
  }
  return s;
}

/** A path the crawl could not take: an error or a skip of the report, and an entry when it is one. */
function onCrawlIssue(
  state: MachineState,
  event: Extract<MachineEvent, { type: "crawl-issue" }>,
  out: Command[],
): MachineState {
  let s = state;
  const issue: RunIssue = { ...event.issue, phase: "crawl" };
  if (event.outcome === "failed") {
    s = { ...s, errors: s.errors.append([issue]) };
    if (event.isEntry) s = { ...s, entries: s.entries + 1, write: add(s.write, { failed: 1 }) };
  } else {
    s = { ...s, skipped: s.skipped.append([issue]) };
    if (event.isEntry) s = { ...s, entries: s.entries + 1, write: add(s.write, { skipped: 1 }) };
  }
  if (event.outcome === "failed" && s.settings.failfast) s = enterErrorReport(s, event.at, out, "failfast");
  return s;
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
  // The stall limit: batches outstanding, and no result for any of them for too long.
  const d = next.dispatch;
  if (
    (next.phase === "WRITE" || next.phase === "VALIDATE") &&
    d &&
    outstanding(d) > 0 &&
    at - next.lastProgressMs > next.settings.stallTimeoutMs
  ) {
    next = failStalled(next, d, at, out);
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

/**
 * A worker announces itself. A new one joins; one declared lost (or stopped) that announces INITIALIZED again
 * is taken back with the control queue and subscription it now names; a known worker naming a new queue gets
 * it recorded (and its old one removed). Each of these is acknowledged by a MODE at once.
 */
function onWorkerState(s: MachineState, m: WorkerStateMessage, at: number, out: Command[]): MachineState {
  const existing = s.workers[m.worker];
  const queueChanged =
    existing !== undefined &&
    (existing.controlQueueUrl !== m.controlQueueUrl || existing.subscriptionArn !== m.subscriptionArn);
  const rejoin =
    existing !== undefined &&
    (existing.state === "LOST" || existing.state === "STOPPED") &&
    m.state === "INITIALIZED";
  if (existing?.state === "LOST" && !rejoin && m.state !== "STOPPED") {
    // Still dropped: it must announce itself (INITIALIZED, a new queue) to be taken back.
    return touchWorker(s, m.worker, at, (w) => w);
  }
  let next = s;
  if (existing && queueChanged && !existing.removed) out.push(removeQueue(existing));
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
    rejoins: 0,
    removed: false,
  };
  if (!existing) out.push({ type: "log", level: "info", message: `worker ${m.worker} on ${m.host} joined` });
  let view: WorkerView = {
    ...base,
    lastSeenMs: at,
    lastSeenPhase: s.phase,
    state: m.state === "INITIALIZED" && s.phase !== "INITIALIZING" ? "ACTIVE" : m.state,
  };
  if (existing && (queueChanged || rejoin)) {
    view = {
      ...view,
      host: m.host,
      pid: m.pid,
      concurrency: m.concurrency,
      controlQueueUrl: m.controlQueueUrl,
      subscriptionArn: m.subscriptionArn,
      removed: false,
    };
  }
  if (rejoin && existing) {
    const { lostAtMs, ...rest } = view;
    view = { ...rest, rejoins: existing.rejoins + 1 };
    const since =
      lostAtMs === undefined ? "after it stopped" : `after being declared lost at ${iso(lostAtMs)}`;
    const note = `worker ${m.worker} on ${m.host} rejoined at ${iso(at)} in ${s.phase} ${since}, with a new control queue`;
    next = { ...next, notes: [...next.notes, note] };
    out.push({ type: "log", level: "warn", message: note });
  }
  next = { ...next, workers: { ...next.workers, [m.worker]: view } };
  if (m.state === "INITIALIZED" && (!existing || rejoin || queueChanged)) {
    // Acknowledge at once so the worker stops re-announcing, and (after INITIALIZING) let it join the work.
    out.push(modeBroadcast(next));
    next = { ...next, lastBeaconMs: at };
  }
  if (m.state === "STOPPED") next = onStopped(markRemoved(next, m.worker), m, at, out);
  return next;
}

/**
 * A worker's goodbye: why it left is kept. One that drains (the master asked it to, or EC2's Spot interruption
 * notice made it) ends drained, not lost, with one note of the report.
 */
function onStopped(s: MachineState, m: WorkerStateMessage, at: number, out: Command[]): MachineState {
  const w = s.workers[m.worker];
  if (!w) return s;
  let view: WorkerView = w;
  if (m.reason && w.stopped?.reason !== m.reason)
    view = { ...view, stopped: { reason: m.reason, detail: m.detail ?? "", atMs: at } };
  const spot = m.reason === "spot interruption";
  const drain = view.drain ?? (spot ? { requestedAtMs: at, reason: "spot interruption" } : undefined);
  let notes = s.notes;
  if (drain && drain.doneAtMs === undefined) {
    view = { ...view, drain: { ...drain, doneAtMs: at } };
    const note = spot
      ? `worker ${w.id} on ${w.host} drained at ${iso(at)} in ${s.phase} after a Spot interruption notice${m.detail ? `: ${m.detail}` : ""}`
      : `worker ${w.id} on ${w.host} drained in ${s.phase} (${drain.reason}): it finished what it held and said goodbye`;
    notes = [...notes, note];
    out.push({ type: "log", level: spot ? "warn" : "info", message: note });
  }
  if (view === w) return s;
  return { ...s, notes, workers: { ...s.workers, [w.id]: view } };
}

/**
 * Drains live workers: each is listed in MODE (sent at once) until it says goodbye; the run counts it as
 * drained, not lost. A worker unknown, lost or gone already is not drained (said in the log).
 */
function onDrain(s: MachineState, e: Extract<MachineEvent, { type: "drain" }>, out: Command[]): MachineState {
  let next = s;
  const asked: string[] = [];
  for (const id of e.workers) {
    const w = next.workers[id];
    if (!w || w.state === "LOST" || w.state === "STOPPED" || w.drain) {
      out.push({ type: "log", level: "warn", message: `not draining ${id}: it is not a live worker` });
      continue;
    }
    const view: WorkerView = { ...w, drain: { requestedAtMs: e.at, reason: e.reason } };
    next = { ...next, workers: { ...next.workers, [id]: view } };
    asked.push(id);
  }
  if (asked.length === 0) return next;
  out.push({ type: "log", level: "info", message: `draining ${asked.join(", ")}: ${e.reason}` });
  if (next.phase === "SHUTDOWN" || next.finished) return next;
  out.push(modeBroadcast(next));
  return { ...next, lastBeaconMs: e.at };
}

function onSummary(s: MachineState, m: SummaryMessage, at: number, out: Command[]): MachineState {
  // A worker declared lost stays lost until it announces itself again, but its results count: they are
  // work done for this run, and the batches it deleted will never come back.
  let next = touchWorker(s, m.worker, at, (w) => ({
    ...w,
    state: w.state === "INITIALIZED" ? "ACTIVE" : w.state,
    totals: m.totals,
    peakRssBytes: Math.max(w.peakRssBytes, m.rssBytes),
    sqsRequests: Math.max(w.sqsRequests, m.sqsRequests),
    holding: m.inFlight,
  }));
  if (next.workers[m.worker] === undefined) {
    // A worker we never saw announce itself (e.g. the master restarted): it works for this run, so count it.
    out.push({ type: "log", level: "warn", message: `summary from unannounced worker ${m.worker}` });
  }
  let newFailures = 0;
  for (const r of m.batches) {
    const counted = takeResult(next, r, m.worker, at, out);
    next = counted.state;
    newFailures += counted.failures;
  }
  if (newFailures > 0 && next.settings.failfast && (next.phase === "WRITE" || next.phase === "VALIDATE")) {
    next = enterErrorReport(next, at, out, "failfast");
  }
  return next;
}

/**
 * A worker's before-VALIDATE hook ran. A failure is an error of the report (the run cannot succeed); the
 * worker takes no VALIDATE batch after it. A worker that sends no HOOK is taken as having no hook.
 */
function onHook(s: MachineState, m: HookMessage, at: number, out: Command[]): MachineState {
  const w = s.workers[m.worker];
  const hook: HookView = {
    ok: m.ok,
    exitCode: m.exitCode,
    signal: m.signal,
    durationMs: m.durationMs,
    atMs: at,
  };
  const prev = w?.hook;
  if (
    prev &&
    prev.ok === m.ok &&
    prev.exitCode === m.exitCode &&
    prev.signal === m.signal &&
    prev.durationMs === m.durationMs
  ) {
    return { ...touchWorker(s, m.worker, at, (v) => v), duplicates: s.duplicates + 1 };
  }
  if (!w)
    out.push({ type: "log", level: "warn", message: `hook outcome from unannounced worker ${m.worker}` });
  let next = touchWorker(s, m.worker, at, (v) => ({ ...v, hook }));
  if (m.ok) {
    out.push({
      type: "log",
      level: "info",
      message: `before-VALIDATE hook on ${m.worker} done in ${seconds(m.durationMs)}`,
    });
    return next;
  }
  const how = m.signal !== null ? `killed by ${m.signal}` : `exit code ${m.exitCode ?? "unknown"}`;
  const tail = lastLines(m.outputTail, 5, 1_000);
  const reason = `before-VALIDATE hook on worker ${m.worker}${w ? ` (${w.host})` : ""} failed: ${how} after ${seconds(m.durationMs)}; ${tail ? `last output: ${tail}` : "no output"}`;
  out.push({ type: "log", level: "error", message: reason });
  next = { ...next, errors: next.errors.append([{ path: `(hook on ${m.worker})`, reason, phase: "hook" }]) };
  if (next.settings.failfast) next = enterErrorReport(next, at, out, "failfast");
  return next;
}
