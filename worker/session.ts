/**
 * A worker's session as a reducer: `step(state, event) → { state, commands }`. Pure: no I/O, no clock (every
 * event carries its time `at`). The worker's loop feeds it what its listeners saw and performs the commands.
 *
 * It keeps what a worker must never lose track of: the master's mode, every TOC batch it holds (each owned by
 * a runner while worked on, then by the outbox until reported, then deleted), the before-VALIDATE hook, whether
 * the master is still there, and whether the master still counts this worker in (rejoin after being dropped).
 * How it ends (a signal, a silent master, a Spot interruption notice) is in `session-leaving.ts`.
 */
import { emptyTally, type WorkPhase } from "../core/messages.ts";
import {
  drainedEnd,
  finish,
  interruptionDue,
  masterSilent,
  onAbort,
  onInterruption,
  onStop,
} from "./session-leaving.ts";

import type {
  Command,
  ControlItem,
  SessionEvent,
  SessionSettings,
  SessionState,
  StepResult,
  TocItem,
} from "./session-types.ts";

export type {
  Command,
  ControlItem,
  HeldBatch,
  HookOutcome,
  HookState,
  SessionEnd,
  SessionEvent,
  SessionSettings,
  SessionState,
  StepResult,
  TocItem,
} from "./session-types.ts";

const MAX_COUNTED_IDS = 2_000;

export function initialSession(settings: SessionSettings, at: number, runId?: string | null): StepResult {
  const state: SessionState = {
    settings,
    runId: runId ?? null,
    mode: "INITIALIZING",
    lastModeSentAtMs: 0,
    seen: false,
    lastHeardMs: at,
    lastPollStartMs: at,
    control: "listening",
    rejoins: 0,
    lastRejoinMs: null,
    rejoinRetryAtMs: null,
    takenBack: true,
    hook: settings.hasHook ? "pending" : "none",
    held: {},
    totals: { WRITE: emptyTally(), VALIDATE: emptyTally() },
    errorsQueued: 0,
    protocolErrors: 0,
    foreignReleased: 0,
    countedIds: [],
    tocPausedUntilMs: 0,
    foreignStreak: 0,
    notes: [],
    errorReport: "none",
    stopping: null,
    interruption: null,
    end: null,
  };
  // With the run known (--run-id) the worker announces itself at once; otherwise on the first MODE it hears.
  return { state, commands: state.runId ? [{ type: "announce" }] : [] };
}

/** The kind of TOC batch this worker may take now, or null: the TOC reader polls only when it is not null. */
export function mayTake(s: SessionState, at: number): WorkPhase | null {
  if (s.end || s.stopping || !s.seen || s.runId === null || at < s.tocPausedUntilMs) return null;
  if (s.mode === "WRITE" && s.hook !== "running") return "WRITE";
  if (s.mode === "VALIDATE" && (s.hook === "none" || s.hook === "ok")) return "VALIDATE";
  return null;
}

export function heldReceipts(s: SessionState): string[] {
  return Object.keys(s.held);
}

export function running(s: SessionState, phase?: WorkPhase): number {
  return Object.values(s.held).filter((h) => h.status === "running" && (!phase || h.phase === phase)).length;
}

export function step(s: SessionState, e: SessionEvent): StepResult {
  const out: Command[] = [];
  let next = s;
  if (s.end && e.type === "toc") {
    // Received while the worker was ending: not ours to work any more, put back at once.
    const receipts = e.items
      .filter((i) =>
        i.decoded.ok ? i.decoded.message.type === "TOC_BATCH" : i.decoded.error.kind === "foreign-run",
      )
      .map((i) => i.receipt);
    const commands: Command[] =
      receipts.length > 0 ? [{ type: "release", receipts, why: "the worker is ending" }] : [];
    return { state: s, commands };
  }
  if (s.end && e.type !== "batch-done" && e.type !== "batch-abandoned" && e.type !== "results-sent") {
    return { state: s, commands: [] }; // ended: only the work still winding down is booked
  }
  switch (e.type) {
    case "control":
      next = { ...next, lastPollStartMs: Math.max(next.lastPollStartMs, e.startedAt) };
      for (const item of e.items) next = onControl(next, item, e.at, out);
      break;
    case "control-failed":
      next = { ...next, lastPollStartMs: Math.max(next.lastPollStartMs, e.startedAt) };
      if (e.gone && next.control === "listening") {
        next = startRejoin(next, e.at, out, "its control queue is gone (the master removed it)");
      } else if (!e.gone) {
        out.push({ type: "log", level: "warn", message: `control queue: ${e.error}` });
      }
      break;
    case "rejoined":
      next = onRejoined(next, e, out);
      break;
    case "rejoin-failed":
      next = { ...next, rejoinRetryAtMs: e.at + 2_000 };
      out.push({ type: "log", level: "warn", message: `could not rejoin (retrying): ${e.error}` });
      break;
    case "toc":
      for (const item of e.items) next = onToc(next, item, e.at, out);
      break;
    case "batch-done":
      next = onBatchDone(next, e, out);
      break;
    case "batch-abandoned": {
      if (!next.held[e.receipt]) break;
      const { [e.receipt]: _gone, ...rest } = next.held;
      next = { ...next, held: rest };
      if (next.end?.why !== "shutdown") {
        out.push({ type: "release", receipts: [e.receipt], why: "abandoned unfinished" });
      }
      break;
    }
    case "hook-done":
      next = onHookDone(next, e.outcome, out);
      break;
    case "results-sent": {
      const held = { ...next.held };
      const done = e.receipts.filter((r) => held[r]?.status === "reporting");
      for (const r of done) delete held[r];
      next = { ...next, held };
      if (done.length > 0) out.push({ type: "delete", receipts: done });
      break;
    }
    case "tick":
      next = onTick(next, e.at, out);
      break;
    case "stop":
      next = onStop(next, e.reason, out);
      break;
    case "interruption":
      next = onInterruption(next, e, out);
      break;
    case "abort":
      next = onAbort(next, e.reason, out);
      break;
    default: {
      const never: never = e;
      throw new Error(`unknown event ${JSON.stringify(never)}`);
    }
  }
  next = afterEvent(next, out);
  return { state: next, commands: out };
}

/** A batch worked: its result is booked in the totals and goes to the outbox; the batch waits to be reported. */
function onBatchDone(
  session: SessionState,
  e: Extract<SessionEvent, { type: "batch-done" }>,
  out: Command[],
): SessionState {
  let next = session;
  const h = next.held[e.receipt];
  if (!h) return next; // released already (the worker is leaving)
  const t = next.totals[e.result.phase];
  const r = e.result;
  next = {
    ...next,
    held: { ...next.held, [e.receipt]: { ...h, status: "reporting" } },
    totals: {
      ...next.totals,
      [r.phase]: {
        ok: t.ok + r.ok,
        failed: t.failed + r.failed,
        skipped: t.skipped + r.skipped,
        unchanged: t.unchanged + r.unchanged,
        bytes: t.bytes + r.bytes,
      },
    },
    errorsQueued: next.errorsQueued + r.errors.length,
  };
  out.push({ type: "report", receipt: e.receipt, result: r });
  return next;
}

/** The before-VALIDATE hook ended: HOOK to the master, and without it, no VALIDATE batch for this worker. */
function onHookDone(
  session: SessionState,
  outcome: Extract<SessionEvent, { type: "hook-done" }>["outcome"],
  out: Command[],
): SessionState {
  let next = session;
  const o = outcome;
  next = { ...next, hook: o.ok ? "ok" : "failed" };
  out.push({ type: "send", body: { type: "HOOK", worker: next.settings.workerId, ...o } });
  if (o.ok) {
    out.push({ type: "log", level: "info", message: `before-VALIDATE hook done in ${o.durationMs} ms` });
  } else {
    const how = o.signal
      ? `was killed by ${o.signal}`
      : o.exitCode === null
        ? "could not start"
        : `exited with ${o.exitCode}`;
    const last = o.outputTail.trim().split("\n").slice(-3).join(" | ");
    const note = `before-VALIDATE hook ${how}: ${last || "(no output)"}; this worker takes no VALIDATE batch`;
    next = { ...next, notes: [...next.notes, note] };
    out.push({ type: "log", level: "error", message: note });
  }
  return next;
}

/** Listening again on a new control queue: the master gets a fresh bound to hear from this worker. */
function onRejoined(
  session: SessionState,
  e: Extract<SessionEvent, { type: "rejoined" }>,
  out: Command[],
): SessionState {
  let next = session;
  next = {
    ...next,
    control: "listening",
    rejoins: next.rejoins + 1,
    lastRejoinMs: e.at,
    rejoinRetryAtMs: null,
    takenBack: false,
    // The master gets a fresh bound to be heard on the new queue.
    lastHeardMs: e.at,
    lastPollStartMs: e.at,
  };
  out.push({
    type: "log",
    level: "warn",
    message: `rejoined the run on a new control queue ${e.queueUrl}`,
  });
  out.push({ type: "announce" });
  return next;
}

/** What follows from any change: the hook when WRITE has drained, the error report, the end of a drain. */
function afterEvent(s: SessionState, out: Command[]): SessionState {
  let next = s;
  if (next.end) return next;
  if (next.mode === "VALIDATE" && next.hook === "pending" && running(next, "WRITE") === 0) {
    // Nothing of WRITE may still be writing while the target is remounted.
    next = { ...next, hook: "running" };
    out.push({ type: "run-hook" });
  }
  if (next.errorReport === "due" && running(next) === 0) {
    next = { ...next, errorReport: "queued" };
    out.push({
      type: "send",
      body: {
        type: "ERROR_REPORT",
        worker: next.settings.workerId,
        errorsSent: next.errorsQueued,
        protocolErrors: next.protocolErrors,
        notes: [...next.notes],
      },
    });
  }
  return drainedEnd(next, out);
}

function onTick(s: SessionState, at: number, out: Command[]): SessionState {
  let next = s;
  if (next.control === "rejoining" && next.rejoinRetryAtMs !== null && at >= next.rejoinRetryAtMs) {
    next = { ...next, rejoinRetryAtMs: null };
    out.push({ type: "rejoin" });
  }
  next = interruptionDue(next, at, out);
  return next.end ? next : masterSilent(next, at, out);
}

function startRejoin(s: SessionState, at: number, out: Command[], why: string): SessionState {
  out.push({ type: "log", level: "warn", message: `dropped by the master (${why}): rejoining` });
  out.push({ type: "rejoin" });
  return { ...s, control: "rejoining", rejoinRetryAtMs: null, lastHeardMs: Math.max(s.lastHeardMs, at) };
}

function countOnce(s: SessionState, id: string): SessionState {
  if (s.countedIds.includes(id)) return s;
  const ids = [...s.countedIds, id];
  return {
    ...s,
    protocolErrors: s.protocolErrors + 1,
    countedIds: ids.length > MAX_COUNTED_IDS ? ids.slice(-MAX_COUNTED_IDS) : ids,
  };
}

function onControl(s: SessionState, item: ControlItem, at: number, out: Command[]): SessionState {
  const d = item.decoded;
  if (!d.ok) {
    out.push({ type: "log", level: "warn", message: `ignored a control message: ${d.error.message}` });
    return countOnce(s, item.id);
  }
  const msg = d.message;
  let next = s;
  if (next.runId === null) {
    if (msg.type !== "MODE") return next;
    next = { ...next, runId: msg.run };
    out.push({ type: "log", level: "info", message: `joined run ${msg.run}` });
  }
  if (msg.run !== next.runId) {
    out.push({
      type: "log",
      level: "warn",
      message: `ignored a ${msg.type} of run ${msg.run} (this worker is in ${next.runId})`,
    });
    return countOnce(next, item.id);
  }
  if (msg.type === "SHUTDOWN") {
    out.push({ type: "abort-work", reason: "the run is over" });
    out.push({ type: "log", level: "info", message: `the master ended the run: ${msg.reason}` });
    // Unfinished batches are of no use now; their messages go with the run's queues.
    return finish({ ...next, held: {} }, out, { why: "shutdown", reason: msg.reason, exitCode: 0 });
  }
  if (msg.type !== "MODE") return next;
  next = { ...next, lastHeardMs: Math.max(next.lastHeardMs, at) };
  // SNS does not keep order: a mode older than one already seen is stale. (INITIALIZING always counts: a
  // restarted master, perhaps on another machine's clock, begins with it.)
  if (msg.phase !== "INITIALIZING" && msg.sentAtMs < next.lastModeSentAtMs) return next;
  next = { ...next, lastModeSentAtMs: msg.sentAtMs };
  const me = next.settings.workerId;

  if (msg.lost?.includes(me)) {
    if (next.control === "rejoining") return next;
    const inGrace = next.lastRejoinMs !== null && at - next.lastRejoinMs < next.settings.rejoinGraceMs;
    if (!inGrace) return startRejoin(next, at, out, "a MODE lists it lost");
    out.push({ type: "announce" }); // rejoined already: the master has not taken the new queue yet
  } else if (!next.takenBack) {
    next = { ...next, takenBack: true };
    out.push({ type: "log", level: "info", message: "the master took this worker back" });
  }

  const previous = next.mode;
  next = { ...next, mode: msg.phase };
  if (msg.phase === "INITIALIZING") {
    // Announce until listed; also to a master that restarted (resumed) and does not know us any more.
    if (msg.known.includes(me)) next = { ...next, seen: true };
    else out.push({ type: "announce" });
  } else if (!next.seen) {
    next = { ...next, seen: true };
    out.push({ type: "announce" }); // a late joiner
  }
  if (msg.phase !== previous) {
    if (previous === "WRITE" || previous === "VALIDATE") out.push({ type: "final-summary", phase: previous });
    // New writes after a hook ran (a resumed run back in WRITE) need the hook again before their checks.
    if (msg.phase === "WRITE" && (next.hook === "ok" || next.hook === "failed"))
      next = { ...next, hook: "pending" };
    if (msg.phase === "ERROR_REPORT" && next.errorReport === "none") next = { ...next, errorReport: "due" };
  }
  return next;
}

function onToc(s: SessionState, item: TocItem, at: number, out: Command[]): SessionState {
  const d = item.decoded;
  if (!d.ok) {
    if (d.error.kind === "foreign-run") {
      // Another run's batch: never ours to delete. Put it back at once for that run's workers, and look less
      // often for a while (each receive counts towards the queue's redrive limit).
      out.push({ type: "release", receipts: [item.receipt], why: "another run's message" });
      out.push({ type: "log", level: "warn", message: `put back a TOC message: ${d.error.message}` });
      const counted = countOnce(s, item.id);
      const streak = s.foreignStreak + 1;
      return {
        ...counted,
        foreignReleased: s.foreignReleased + 1,
        foreignStreak: streak,
        // Longer each time in a row (a leftover worker must not push the other run's batches to the DLQ).
        tocPausedUntilMs: at + Math.min(30_000, s.settings.foreignPauseMs * 2 ** Math.min(streak - 1, 10)),
      };
    }
    // Undecodable: neither deleted nor acted on; the queue's redrive moves it to the dead-letter queue.
    out.push({
      type: "log",
      level: "warn",
      message: `left a TOC message to the dead-letter queue: ${d.error.message}`,
    });
    return countOnce(s, item.id);
  }
  const msg = d.message;
  if (msg.type !== "TOC_BATCH") {
    out.push({
      type: "log",
      level: "warn",
      message: `left a ${msg.type} message on the TOC queue to the dead-letter queue`,
    });
    return countOnce(s, item.id);
  }
  const refusal = refuse(s, msg.phase);
  if (refusal) {
    out.push({ type: "release", receipts: [item.receipt], why: refusal });
    return s;
  }
  out.push({ type: "run-batch", receipt: item.receipt, message: msg, receiveCount: item.receiveCount });
  return {
    ...s,
    tocPausedUntilMs: 0,
    foreignStreak: 0,
    held: {
      ...s.held,
      [item.receipt]: {
        batch: msg.batch,
        phase: msg.phase,
        receiveCount: item.receiveCount,
        status: "running",
      },
    },
  };
}

/** Why a batch of this phase is not taken now (it is put back for another worker or for later), or null. */
function refuse(s: SessionState, phase: WorkPhase): string | null {
  if (s.end || s.stopping) return "the worker is stopping";
  if (phase === "WRITE") return s.hook === "running" ? "the before-VALIDATE hook is running" : null;
  if (s.hook === "failed") return "the before-VALIDATE hook failed on this worker";
  if (s.hook === "pending" || s.hook === "running") return "the before-VALIDATE hook has not run yet";
  return null;
}
