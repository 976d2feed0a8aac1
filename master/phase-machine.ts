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
  type BatchResult,
  emptyTally,
  type HookMessage,
  type PathIssue,
  type Phase,
  type Stage,
  type SummaryMessage,
  type Tally,
  type WorkerStateMessage,
  type WorkPhase,
} from "../core/messages.ts";
import { AppendList } from "./append-list.ts";
import { BatchSet } from "./batch-set.ts";
import type {
  Command,
  DispatchView,
  HookView,
  MachineEvent,
  MachineSettings,
  MachineState,
  PartAssembly,
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
  if (m.state === "STOPPED") next = markRemoved(next, m.worker);
  return next;
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

function onBatchesIssued(
  s: MachineState,
  e: Extract<MachineEvent, { type: "batches-issued" }>,
  out: Command[],
): MachineState {
  const d = s.dispatch;
  if (!d || e.batches === 0) return s;
  if (e.first < d.firstBatch || e.first !== d.firstBatch + d.issued) {
    // Our dispatcher numbers its batches in order from the stage's first: anything else is a bug.
    out.push({
      type: "log",
      level: "error",
      message: `the dispatcher issued batches ${e.first}-${e.first + e.batches - 1} out of order in ${d.phase} ${d.stage}`,
    });
  }
  let issued = s.issued;
  for (let b = e.first; b < e.first + e.batches; b++) issued = issued.add(b);
  const wasIdle = outstanding(d) === 0;
  return {
    ...s,
    issued,
    nextBatch: Math.max(s.nextBatch, e.first + e.batches),
    // The crawl's files and symlinks count as entries once handed out (a run that ends early still adds up);
    // its directories count when the crawl ends.
    entries: d.phase === "WRITE" && d.stage === "content" ? s.entries + e.entries : s.entries,
    dispatch: { ...d, issued: d.issued + e.batches, entriesIssued: d.entriesIssued + e.entries },
    // Work outstanding again after none: the stall clock starts now, not when the last batch finished.
    lastProgressMs: wasIdle ? e.at : s.lastProgressMs,
  };
}

/** Takes one batch result (or one part of it): counts it once, refuses what this master never sent. */
function takeResult(
  s: MachineState,
  r: BatchResult,
  worker: string,
  at: number,
  out: Command[],
): { state: MachineState; failures: number } {
  if (s.doneBatches.has(r.batch)) return { state: { ...s, duplicates: s.duplicates + 1 }, failures: 0 };
  if (r.batch < s.firstBatchOfAttempt)
    return { state: { ...s, staleResults: s.staleResults + 1 }, failures: 0 };
  const d = s.dispatch;
  if (!s.issued.has(r.batch)) {
    return {
      state: protocolError(s, `result for batch ${r.batch} from ${worker}, which was never sent`, out),
      failures: 0,
    };
  }
  if (!d || r.batch < d.firstBatch || d.phase !== r.phase) {
    return {
      state: protocolError(
        s,
        `result for batch ${r.batch} (${r.phase}) from ${worker} is not of this stage`,
        out,
      ),
      failures: 0,
    };
  }
  if (r.part === undefined || r.part.of === 1) {
    if (r.part !== undefined && r.part.index !== 0) {
      return {
        state: protocolError(s, `batch ${r.batch} from ${worker}: part ${r.part.index} of 1`, out),
        failures: 0,
      };
    }
    return countBatch(s, d, r, r.errors, r.skips, worker, at);
  }
  return takePart(s, d, r, worker, at, out);
}

/** One part of a result in parts: held until every part of the same worker and delivery is in. */
function takePart(
  s: MachineState,
  d: DispatchView,
  r: BatchResult,
  worker: string,
  at: number,
  out: Command[],
): { state: MachineState; failures: number } {
  const part = r.part as { index: number; of: number };
  const what = `part ${part.index} of ${part.of} of batch ${r.batch} from ${worker}`;
  const key = `${r.batch}/${worker}/${r.receiveCount}`;
  const held = s.parts[key];
  const { errors, skips, part: _, ...head } = r;
  if (part.index >= part.of) return { state: protocolError(s, `${what}: no such part`, out), failures: 0 };
  if (held && (held.of !== part.of || !sameCounts(held.head, head))) {
    return {
      state: protocolError(s, `${what}: its counts differ from the batch's other parts`, out),
      failures: 0,
    };
  }
  if (held?.got.has(part.index)) return { state: { ...s, duplicates: s.duplicates + 1 }, failures: 0 };
  const errorsSoFar = (held?.errors.length ?? 0) + errors.length;
  const skipsSoFar = (held?.skips.length ?? 0) + skips.length;
  if (errorsSoFar > r.failed || skipsSoFar > r.skipped) {
    return {
      state: protocolError(
        s,
        `${what}: ${errorsSoFar} errors and ${skipsSoFar} skips so far, for ${r.failed} failed and ${r.skipped} skipped`,
        out,
      ),
      failures: 0,
    };
  }
  const assembly: PartAssembly = {
    batch: r.batch,
    worker,
    receiveCount: r.receiveCount,
    of: part.of,
    head: held?.head ?? head,
    got: (held?.got ?? BatchSet.empty).add(part.index),
    errors: (held?.errors ?? AppendList.empty<PathIssue>()).append(errors),
    skips: (held?.skips ?? AppendList.empty<PathIssue>()).append(skips),
  };
  if (assembly.got.countIn(0, part.of) < part.of) {
    const received = touchWorker(s, worker, at, (w) => ({
      ...w,
      errorsReceived: w.errorsReceived + errors.length,
    }));
    return { state: { ...received, parts: { ...s.parts, [key]: assembly } }, failures: 0 };
  }
  const counted = countBatch(
    s,
    d,
    r,
    assembly.errors.toArray(),
    assembly.skips.toArray(),
    worker,
    at,
    errors.length,
  );
  return counted;
}

type Counts = Omit<BatchResult, "errors" | "skips" | "part">;

function sameCounts(a: Counts, b: Counts): boolean {
  return (
    a.phase === b.phase &&
    a.ok === b.ok &&
    a.failed === b.failed &&
    a.skipped === b.skipped &&
    a.unchanged === b.unchanged &&
    a.bytes === b.bytes
  );
}

/** Counts a whole batch result: its tallies, issues and the stage's progress. */
function countBatch(
  s: MachineState,
  d: DispatchView,
  r: BatchResult,
  errorIssues: readonly PathIssue[],
  skipIssues: readonly PathIssue[],
  worker: string,
  at: number,
  errorsInThisMessage = errorIssues.length,
): { state: MachineState; failures: number } {
  const tally = r.phase === "WRITE" ? "write" : "validate";
  const errors = errorIssues.map((e): RunIssue => ({ path: e.path, reason: e.reason, phase: r.phase }));
  const skips = skipIssues.map((e): RunIssue => ({ path: e.path, reason: e.reason, phase: r.phase }));
  let next: MachineState = {
    ...s,
    doneBatches: s.doneBatches.add(r.batch),
    parts: dropParts(s.parts, r.batch),
    dispatch: {
      ...d,
      done: d.done + 1,
      entriesDone: d.entriesDone + r.ok + r.failed + r.skipped + r.unchanged,
    },
    [tally]: add(s[tally], {
      ok: r.ok,
      failed: r.failed,
      skipped: r.skipped,
      unchanged: r.unchanged,
      bytes: r.bytes,
    }),
    errors: s.errors.append(errors),
    skipped: s.skipped.append(skips),
    redelivered: s.redelivered + (r.receiveCount > 1 ? 1 : 0),
    lastProgressMs: at,
  };
  next = touchWorker(next, worker, next.workers[worker]?.lastSeenMs ?? 0, (w) => ({
    ...w,
    errorsReceived: w.errorsReceived + errorsInThisMessage,
  }));
  return { state: next, failures: r.failed };
}

/** The assemblies left once `batch` is counted: none of its own (other workers' or deliveries' included). */
function dropParts(parts: MachineState["parts"], batch: number): MachineState["parts"] {
  const prefix = `${batch}/`;
  const keys = Object.keys(parts);
  if (!keys.some((k) => k.startsWith(prefix))) return parts;
  return Object.fromEntries(Object.entries(parts).filter(([k]) => !k.startsWith(prefix)));
}

function onDeadLettered(
  s: MachineState,
  e: Extract<MachineEvent, { type: "dead-lettered" }>,
  out: Command[],
): MachineState {
  if (s.doneBatches.has(e.batch)) return s;
  if (e.batch < s.firstBatchOfAttempt) {
    // Sent by an earlier master of this run: its entries are sent again in this attempt, under new numbers.
    out.push({
      type: "log",
      level: "warn",
      message: `batch ${e.batch} of an earlier attempt was dead-lettered`,
    });
    return { ...s, staleResults: s.staleResults + 1 };
  }
  const d = s.dispatch;
  if (!s.issued.has(e.batch)) {
    return protocolError(
      s,
      `dead letter for batch ${e.batch}, which was never sent`,
      out,
      "dead-letter queue",
    );
  }
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
    parts: dropParts(s.parts, e.batch),
    dispatch: inStage && d ? { ...d, done: d.done + 1, entriesDone: d.entriesDone + e.paths.length } : d,
    [tally]: add(s[tally], { failed: e.paths.length }),
    errors: s.errors.append(errors),
    deadLettered: s.deadLettered + 1,
    lastProgressMs: e.at,
  };
  if (next.settings.failfast) next = enterErrorReport(next, e.at, out, "failfast");
  return next;
}

function protocolError(
  s: MachineState,
  reason: string,
  out: Command[],
  source: "report queue" | "dead-letter queue" = "report queue",
): MachineState {
  out.push({ type: "log", level: "warn", message: `ignored a message: ${reason}` });
  const next = { ...s, protocolErrors: s.protocolErrors + 1 };
  // Noted in the report too (the first few): a message in the dead-letter queue is work that went wrong.
  if (source === "dead-letter queue" && next.notes.length < 200) {
    return { ...next, notes: [...next.notes, `protocol error in the dead-letter queue: ${reason}`] };
  }
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
  // VALIDATE with checks left and no live worker that may do them (a worker whose hook failed takes none):
  // nothing will ever finish them, so the run ends now rather than at the stall limit.
  const v = next.dispatch;
  const live = liveWorkers(next);
  if (
    next.phase === "VALIDATE" &&
    v?.phase === "VALIDATE" &&
    (!v.complete || v.done < v.batches) &&
    live.length > 0 &&
    live.every((w) => w.hook !== undefined && !w.hook.ok)
  ) {
    out.push({ type: "purge-toc" });
    next = fail(
      next,
      at,
      `no worker can validate: the before-VALIDATE hook failed on every live worker (${live.map((w) => w.id).join(", ")}); ${describeOutstanding(next, v)}`,
      out,
    );
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

/** The stall limit: the run fails and the report names what was outstanding. */
function failStalled(s: MachineState, d: DispatchView, at: number, out: Command[]): MachineState {
  const reason = `stalled: no batch result for ${seconds(s.settings.stallTimeoutMs)} in ${d.phase} ${d.stage}; ${describeOutstanding(s, d)}`;
  out.push({ type: "purge-toc" });
  return fail({ ...s, notes: [...s.notes, reason] }, at, reason, out);
}

/** "3 batches outstanding (12 entries): 4, 7-8", the numbers as ranges, the first 20 of them. */
function describeOutstanding(s: MachineState, d: DispatchView): string {
  const limit = 20;
  const ranges = s.issued.rangesNotIn(s.doneBatches, d.firstBatch, Number.POSITIVE_INFINITY, limit + 1);
  const shown = ranges
    .slice(0, limit)
    .map(([a, b]) => (b - a === 1 ? String(a) : `${a}-${b - 1}`))
    .join(", ");
  const more = ranges.length > limit ? ", …" : "";
  const n = outstanding(d);
  if (n === 0) return `no batch of ${d.phase} ${d.stage} handed out yet`;
  return `${n} batch${n === 1 ? "" : "es"} outstanding (${d.entriesIssued - d.entriesDone} entries): ${shown}${more}`;
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
  const dispatch: DispatchView = {
    phase,
    stage,
    firstBatch: s.nextBatch,
    batches: 0,
    entries: 0,
    issued: 0,
    entriesIssued: 0,
    complete: false,
    done: 0,
    entriesDone: 0,
  };
  return { ...s, dispatch };
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

/** Batches of the stage handed out and not yet counted. */
export function outstanding(d: DispatchView): number {
  return d.issued - d.done;
}

/** Workers declared lost and not taken back, as MODE lists them (the newest first, at most 1,000). */
export function lostWorkers(s: MachineState): string[] {
  return Object.values(s.workers)
    .filter((w) => w.state === "LOST")
    .sort((a, b) => (b.lostAtMs ?? 0) - (a.lostAtMs ?? 0))
    .slice(0, 1_000)
    .map((w) => w.id);
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
    message: { type: "MODE", phase: s.phase, known, lost: lostWorkers(s), failfast: s.settings.failfast },
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

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The last `n` non-empty lines of a command's output, on one line, at most `max` characters. */
function lastLines(text: string, n: number, max: number): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join(" | ");
  return lines.length > max ? `…${lines.slice(-(max - 1))}` : lines;
}
