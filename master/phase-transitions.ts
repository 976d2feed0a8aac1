/**
 * The phase machine's transitions (entering a phase, failing, finishing, the dispatch of a stage) and the
 * small pure helpers over its state that every handler uses. The lowest layer of the reducer: it calls nothing
 * above it (phase-results.ts and phase-machine.ts do).
 */
import type { Phase, Stage, Tally, WorkPhase } from "../core/messages.ts";
import type { Command, DispatchView, MachineState, WorkerView } from "./phase-types.ts";

export function protocolError(
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

export function onInterrupt(s: MachineState, at: number, out: Command[]): MachineState {
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
export function advance(s: MachineState, at: number, out: Command[]): MachineState {
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

export function afterValidate(s: MachineState, at: number, out: Command[]): MachineState {
  if (hasFailures(s)) return enterErrorReport(s, at, out, "failures");
  return enterShutdown({ ...s, outcome: s.outcome ?? "succeeded" }, at, out, "run finished");
}

export function enterWrite(s: MachineState, at: number, out: Command[]): MachineState {
  let next = setPhase(s, "WRITE", at);
  next = activateWorkers(next);
  out.push(modeBroadcast(next));
  next = { ...next, lastBeaconMs: at };
  return startDispatch(next, "WRITE", "content", out);
}

export function enterValidate(s: MachineState, at: number, out: Command[]): MachineState {
  let next = setPhase(s, "VALIDATE", at);
  out.push(modeBroadcast(next));
  next = { ...next, lastBeaconMs: at };
  return startDispatch(next, "VALIDATE", "content", out);
}

export function enterErrorReport(
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

export function enterShutdown(s: MachineState, at: number, out: Command[], reason: string): MachineState {
  if (s.phase === "SHUTDOWN") return s;
  let next = setPhase(s, "SHUTDOWN", at);
  if (next.outcome === null) next = { ...next, outcome: hasFailures(next) ? "failed" : "succeeded" };
  out.push({ type: "broadcast", message: { type: "SHUTDOWN", reason } });
  return { ...next, lastBeaconMs: at };
}

export function fail(s: MachineState, at: number, reason: string, out: Command[]): MachineState {
  const next: MachineState = { ...s, outcome: "failed", failureReason: s.failureReason ?? reason };
  out.push({ type: "log", level: "error", message: `run failed: ${reason}` });
  out.push({ type: "stop-dispatch" });
  return enterShutdown(next, at, out, `run failed: ${reason}`);
}

/** The stall limit: the run fails and the report names what was outstanding. */
export function failStalled(s: MachineState, d: DispatchView, at: number, out: Command[]): MachineState {
  const reason = `stalled: no batch result for ${seconds(s.settings.stallTimeoutMs)} in ${d.phase} ${d.stage}; ${describeOutstanding(s, d)}; ${describeHolders(s)}`;
  out.push({ type: "purge-toc" });
  return fail({ ...s, notes: [...s.notes, reason] }, at, reason, out);
}

/** "3 batches outstanding (12 entries): 4, 7-8", the numbers as ranges, the first 20 of them. */
export function describeOutstanding(s: MachineState, d: DispatchView): string {
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

/** Which live workers said, in their last summary, that they hold batches: where a wedged batch is. */
function describeHolders(s: MachineState): string {
  const holders = Object.values(s.workers).filter(
    (w) => (w.holding ?? 0) > 0 && w.state !== "LOST" && w.state !== "STOPPED",
  );
  if (holders.length === 0)
    return "no live worker says it holds one (on the TOC queue, or hidden until its visibility timeout: taken by a worker that went away, or by a receive whose answer was lost)";
  const listed = holders.map(
    (w) => `${w.id} on ${w.host} (${w.holding}, last heard of ${iso(w.lastSeenMs)})`,
  );
  return `held by ${listed.join(", ")}`;
}

export function finish(s: MachineState, at: number, out: Command[]): MachineState {
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

export function startDispatch(s: MachineState, phase: WorkPhase, stage: Stage, out: Command[]): MachineState {
  out.push({ type: "dispatch", phase, stage, firstBatch: s.nextBatch });
  const dispatch: DispatchView = {
    phase,
    stage,
    firstBatch: s.nextBatch,
    batches: 0,
    entries: 0,
    issued: 0,
    entriesIssued: 0,
    bytesIssued: 0,
    complete: false,
    done: 0,
    entriesDone: 0,
  };
  return { ...s, dispatch };
}

export function setPhase(s: MachineState, phase: Phase, at: number): MachineState {
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

export function activateWorkers(s: MachineState): MachineState {
  const workers = Object.fromEntries(
    Object.entries(s.workers).map(([k, w]) => [
      k,
      w.state === "INITIALIZED" ? { ...w, state: "ACTIVE" as const } : w,
    ]),
  );
  return { ...s, workers };
}

export function touchWorker(
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

/** Workers asked to drain that have not said goodbye yet, as MODE lists them (at most 1,000). */
export function drainingWorkers(s: MachineState): string[] {
  return Object.values(s.workers)
    .filter((w) => w.drain && w.drain.doneAtMs === undefined && w.state !== "LOST" && w.state !== "STOPPED")
    .slice(0, 1_000)
    .map((w) => w.id);
}

export function markRemoved(s: MachineState, id: string): MachineState {
  const w = s.workers[id];
  if (!w) return s;
  return { ...s, workers: { ...s.workers, [id]: { ...w, state: "STOPPED", removed: true } } };
}

export function removeQueue(w: WorkerView): Command {
  return {
    type: "remove-worker-queue",
    worker: w.id,
    queueUrl: w.controlQueueUrl,
    subscriptionArn: w.subscriptionArn,
  };
}

export function modeBroadcast(s: MachineState): Command {
  if (s.phase === "SHUTDOWN") {
    return { type: "broadcast", message: { type: "SHUTDOWN", reason: s.failureReason ?? "run finished" } };
  }
  const known = s.phase === "INITIALIZING" ? Object.keys(s.workers) : [];
  const drain = drainingWorkers(s);
  return {
    type: "broadcast",
    message: {
      type: "MODE",
      phase: s.phase,
      known,
      lost: lostWorkers(s),
      ...(drain.length > 0 ? { drain } : {}),
      failfast: s.settings.failfast,
    },
  };
}

export function logPhaseEnd(s: MachineState, phase: WorkPhase): Command {
  const t = phase === "WRITE" ? s.write : s.validate;
  return {
    type: "log",
    level: "info",
    message: `${phase} done: ${t.ok} ok, ${t.failed} failed, ${t.skipped} skipped, ${t.unchanged} unchanged`,
  };
}

export function add(t: Tally, d: Partial<Tally>): Tally {
  return {
    ok: t.ok + (d.ok ?? 0),
    failed: t.failed + (d.failed ?? 0),
    skipped: t.skipped + (d.skipped ?? 0),
    unchanged: t.unchanged + (d.unchanged ?? 0),
    bytes: t.bytes + (d.bytes ?? 0),
  };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The last `n` non-empty lines of a command's output, on one line, at most `max` characters. */
export function lastLines(text: string, n: number, max: number): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join(" | ");
  return lines.length > max ? `…${lines.slice(-(max - 1))}` : lines;
}
