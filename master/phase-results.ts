/**
 * The phase machine's intake of batch results: batches issued, results (whole or in parts) counted once per
 * batch, and batches that ended in the dead-letter queue.
 */
import type { BatchResult, PathIssue } from "../core/messages.ts";
import { AppendList } from "./append-list.ts";
import { BatchSet } from "./batch-set.ts";
import { add, enterErrorReport, outstanding, protocolError, touchWorker } from "./phase-transitions.ts";
import type {
  Command,
  DispatchView,
  MachineEvent,
  MachineState,
  PartAssembly,
  RunIssue,
} from "./phase-types.ts";

export function onBatchesIssued(
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
export function takeResult(
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
export function takePart(
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

export type Counts = Omit<BatchResult, "errors" | "skips" | "part">;

export function sameCounts(a: Counts, b: Counts): boolean {
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
export function countBatch(
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
export function dropParts(parts: MachineState["parts"], batch: number): MachineState["parts"] {
  const prefix = `${batch}/`;
  const keys = Object.keys(parts);
  if (!keys.some((k) => k.startsWith(prefix))) return parts;
  return Object.fromEntries(Object.entries(parts).filter(([k]) => !k.startsWith(prefix)));
}

export function onDeadLettered(
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

/** The paths that failed or were skipped in WRITE: VALIDATE does not check them. */
export function writeFailures(state: MachineState): ReadonlySet<string> {
  return new Set([...state.errors, ...state.skipped].filter((e) => e.phase === "WRITE").map((e) => e.path));
}
