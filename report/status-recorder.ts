/**
 * What a run leaves for people besides its logs: the status file that `status` reads in another terminal (the
 * latest figures, rewritten at every progress tick, then how the run ended), and the timeline of its throughput
 * that goes into the report. The command feeds it the run's progress through its console and finishes the
 * report with it.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { runDir, STATUS_FILE } from "../core/run-paths.ts";
import type { Progress } from "../master/progress-meter.ts";
import type { RunReport, TimelineSample } from "../master/report.ts";

/** What `status` reads: the run's latest figures, rewritten at every progress tick. */
export interface RunStatus {
  readonly runId: string;
  readonly pid: number;
  readonly host: string;
  readonly source: string;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly expectedWorkers: number;
  readonly progress: Progress | null;
  readonly ended: {
    readonly outcome: string;
    readonly failureReason: string | null;
    readonly endedAt: string;
    /** The verification manifest, when the run wrote one. */
    readonly manifest?: { readonly destination: string; readonly lines: number };
  } | null;
}

export interface StatusRecorderOptions {
  readonly runId: string;
  /** The status file goes to `<stateDir>/runs/<runId>/status.json`. */
  readonly stateDir: string;
  readonly source: string;
  readonly expectedWorkers: number;
  readonly now?: () => number;
}

export interface StatusRecorder {
  /** One progress tick: a timeline sample, and the status file rewritten. A file that cannot be written is warned of once, through `log`. */
  progress(p: Progress, log: Logger): void;
  /** The report with this run's timeline; the status file says the run ended. */
  finish(report: RunReport, log: Logger): RunReport;
}

const MAX_TIMELINE = 2_000;

export function createStatusRecorder(o: StatusRecorderOptions): StatusRecorder {
  const now = o.now ?? Date.now;
  const startedMs = now();
  const status = statusWriter(o, startedMs, now);
  const timeline = timelineRecorder(startedMs, now);
  return {
    progress(p, log) {
      timeline.add(p);
      status(p, null, log);
    },
    finish(report, log) {
      status(null, report, log);
      return { ...report, timeline: timeline.samples() };
    },
  };
}

/** Writes the run's status file, atomically: the latest figures while it runs, then how it ended. */
function statusWriter(
  o: StatusRecorderOptions,
  startedMs: number,
  now: () => number,
): (p: Progress | null, ended: RunReport | null, log: Logger) => void {
  const dir = runDir(o.stateDir, o.runId);
  let failed = false;
  return (p, ended, log) => {
    const doc: RunStatus = {
      runId: o.runId,
      pid: process.pid,
      host: os.hostname(),
      source: o.source,
      startedAt: new Date(startedMs).toISOString(),
      updatedAt: new Date(now()).toISOString(),
      expectedWorkers: o.expectedWorkers,
      progress: p,
      ended: ended
        ? {
            outcome: ended.outcome,
            failureReason: ended.failureReason,
            endedAt: ended.endedAt,
            ...(ended.manifest ? { manifest: ended.manifest } : {}),
          }
        : null,
    };
    try {
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, STATUS_FILE);
      writeFileSync(`${file}.tmp-${process.pid}`, `${JSON.stringify(doc)}\n`);
      renameSync(`${file}.tmp-${process.pid}`, file);
    } catch (err) {
      // The status file is for people watching; a run never fails over it, and says so once.
      if (!failed) log.warn(`the status file in ${dir} cannot be written: ${describe(err)}`);
      failed = true;
    }
  };
}

/** The run's throughput over time, one sample per progress tick, kept to at most MAX_TIMELINE samples. */
function timelineRecorder(
  startedMs: number,
  now: () => number,
): { add(p: Progress): void; samples(): TimelineSample[] } {
  const timeline: TimelineSample[] = [];
  return {
    add(p) {
      timeline.push({
        t: Math.round((now() - startedMs) / 100) / 10,
        phase: p.phase,
        filesPerSec: p.filesPerSec,
        mbPerSec: p.mbPerSec,
        written: p.written,
        validated: p.validated,
        failed: p.failed,
        workersAlive: p.workersAlive,
      });
      // Keep the timeline bounded on long runs: drop every other sample.
      if (timeline.length > MAX_TIMELINE)
        for (let i = timeline.length - 2; i > 0; i -= 2) timeline.splice(i, 1);
    },
    samples: () => [...timeline],
  };
}
