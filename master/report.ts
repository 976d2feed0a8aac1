/**
 * The final (or partial) report, built from the machine's state: what happened to every TOC entry, per-worker
 * figures, phase timings and rates. Pure.
 */
import type { Tally } from "../core/messages.ts";
import type { MachineState, Outcome, RunIssue } from "./phase-machine.ts";

export interface WorkerFigures {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
  readonly state: string;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly lostAt: string | null;
  readonly write: Tally;
  readonly validate: Tally;
  readonly peakRssBytes: number;
  /** Its before-VALIDATE hook's outcome; null when it sent none (no hook, or VALIDATE never began). */
  readonly hook: {
    readonly ok: boolean;
    readonly exitCode: number | null;
    readonly signal: string | null;
    readonly durationMs: number;
  } | null;
  /** How often it came back after being declared lost. */
  readonly rejoins: number;
  /** Why it said goodbye (`spot interruption`: drained on EC2's notice); null when it did not. */
  readonly stopped: { readonly reason: string; readonly detail: string; readonly at: string } | null;
}

export interface RunReport {
  readonly runId: string;
  readonly outcome: Outcome;
  readonly failureReason: string | null;
  readonly source: string;
  readonly target: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationSec: number;
  /** Every entry the crawl found. */
  readonly entries: number;
  /** Bytes of the files written. */
  readonly bytes: number;
  /** `unchanged`: already in the target as in the source (a re-run), so not written again. */
  readonly write: {
    readonly ok: number;
    readonly failed: number;
    readonly skipped: number;
    readonly unchanged: number;
  };
  readonly validate: { readonly ok: number; readonly failed: number };
  /** Entries never attempted because the run stopped early (failfast, interrupt, failure). */
  readonly notAttempted: number;
  readonly errors: readonly RunIssue[];
  readonly skipped: readonly RunIssue[];
  readonly workers: readonly WorkerFigures[];
  readonly phases: Readonly<
    Record<string, { start: string; end: string | null; durationSec: number | null }>
  >;
  readonly rates: { readonly writeFilesPerSec: number; readonly writeMBPerSec: number };
  readonly delivery: {
    readonly duplicates: number;
    /** Results of batches sent by an earlier master of a resumed run. */
    readonly staleResults: number;
    readonly redelivered: number;
    readonly deadLettered: number;
    readonly protocolErrors: number;
    /** Every SQS request of the run: the master's and each worker's (as each last reported). */
    readonly sqsRequests: number;
    readonly sqsRequestsPerEntry: number;
    readonly masterSqsRequests: number;
  };
  readonly master: { readonly peakRssBytes: number };
  readonly notes: readonly string[];
  /**
   * `--delete`: the previous successful run compared with, the paths it held that this run's TOC has not, how
   * many of them were deleted, those that could not be, and why nothing was deleted when so.
   */
  readonly deletions?:
    | {
        readonly previousRun: string | null;
        readonly paths: readonly string[];
        readonly deleted: number;
        readonly failed: readonly { readonly path: string; readonly reason: string }[];
        readonly note: string | null;
      }
    | undefined;
  /** The verification manifest (`--manifest-out`): where it went and its lines, one per entry. */
  readonly manifest?: { readonly destination: string; readonly lines: number } | undefined;
  /** The live figures as the run went, one sample per progress line (for the HTML report's chart). */
  readonly timeline?: readonly TimelineSample[];
}

export interface TimelineSample {
  /** Seconds since the run started. */
  readonly t: number;
  readonly phase: string;
  readonly filesPerSec: number;
  readonly mbPerSec: number;
  readonly written: number;
  readonly validated: number;
  readonly failed: number;
  readonly workersAlive: number;
}

export function buildReport(
  s: MachineState,
  ctx: { source: string; target: string; endedAtMs: number; sqsRequests: number; masterPeakRssBytes: number },
): RunReport {
  const iso = (ms: number) => new Date(ms).toISOString();
  const phases: Record<string, { start: string; end: string | null; durationSec: number | null }> = {};
  for (const [name, t] of Object.entries(s.phaseTimes)) {
    if (!t) continue;
    phases[name] = {
      start: iso(t.startMs),
      end: t.endMs === undefined ? null : iso(t.endMs),
      durationSec: t.endMs === undefined ? null : round((t.endMs - t.startMs) / 1000),
    };
  }
  const writeTime = s.phaseTimes.WRITE;
  const writeSec = writeTime ? ((writeTime.endMs ?? ctx.endedAtMs) - writeTime.startMs) / 1000 : 0;
  const totalSqs = ctx.sqsRequests + Object.values(s.workers).reduce((n, w) => n + w.sqsRequests, 0);
  const accounted = s.write.ok + s.write.failed + s.write.skipped + s.write.unchanged;
  return {
    runId: s.runId,
    outcome: s.outcome ?? "failed",
    failureReason: s.failureReason,
    source: ctx.source,
    target: ctx.target,
    startedAt: iso(s.startedAtMs),
    endedAt: iso(ctx.endedAtMs),
    durationSec: round((ctx.endedAtMs - s.startedAtMs) / 1000),
    entries: s.entries,
    bytes: s.write.bytes,
    write: { ok: s.write.ok, failed: s.write.failed, skipped: s.write.skipped, unchanged: s.write.unchanged },
    validate: { ok: s.validate.ok, failed: s.validate.failed },
    notAttempted: Math.max(0, s.entries - accounted),
    errors: s.errors.toArray(),
    skipped: s.skipped.toArray(),
    workers: Object.values(s.workers).map((w) => ({
      id: w.id,
      host: w.host,
      pid: w.pid,
      concurrency: w.concurrency,
      state: w.state,
      firstSeen: iso(w.firstSeenMs),
      lastSeen: iso(w.lastSeenMs),
      lostAt: w.lostAtMs === undefined ? null : iso(w.lostAtMs),
      write: w.totals.WRITE,
      validate: w.totals.VALIDATE,
      peakRssBytes: w.peakRssBytes,
      hook: w.hook
        ? { ok: w.hook.ok, exitCode: w.hook.exitCode, signal: w.hook.signal, durationMs: w.hook.durationMs }
        : null,
      rejoins: w.rejoins,
      stopped: w.stopped
        ? { reason: w.stopped.reason, detail: w.stopped.detail, at: iso(w.stopped.atMs) }
        : null,
    })),
    phases,
    rates: {
      writeFilesPerSec: writeSec > 0 ? round(accounted / writeSec) : 0,
      writeMBPerSec: writeSec > 0 ? round(s.write.bytes / 1e6 / writeSec) : 0,
    },
    delivery: {
      duplicates: s.duplicates,
      staleResults: s.staleResults,
      redelivered: s.redelivered,
      deadLettered: s.deadLettered,
      protocolErrors: s.protocolErrors,
      sqsRequests: totalSqs,
      sqsRequestsPerEntry: s.entries > 0 ? round(totalSqs / s.entries, 4) : 0,
      masterSqsRequests: ctx.sqsRequests,
    },
    master: { peakRssBytes: ctx.masterPeakRssBytes },
    // The workers' own notes (from their error reports) belong to the run's story too.
    notes: [
      ...s.notes,
      ...Object.values(s.workers).flatMap((w) =>
        (w.errorReport?.notes ?? []).map((n) => `worker ${w.id}: ${n}`),
      ),
    ],
  };
}

/** Exit code of a run: 0 all verified, 1 entries failed, 130 interrupted. */
export function exitCodeOf(outcome: Outcome): number {
  return outcome === "succeeded" ? 0 : outcome === "interrupted" ? 130 : 1;
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
