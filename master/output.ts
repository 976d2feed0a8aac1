/**
 * What the master shows people: the live progress while it runs (a redrawn display on a terminal, a compact
 * line every few seconds otherwise, JSON lines with `--log-format json`, nothing with `--quiet`), a summary at
 * the end, and the report file. The status file and the timeline are kept beside it (`report/status-recorder.ts`),
 * fed the same progress through `onProgress`.
 */

import fs from "node:fs/promises";
import path from "node:path";
import { createLogger, type Logger } from "../core/log.ts";
import { quietLogger } from "../core/quiet-log.ts";
import type { Progress } from "./progress-meter.ts";
import type { RunReport } from "./report.ts";

/**
 * A logger that is also where the run's progress goes. The run's options are built from a logger (the local
 * run builds them itself), so the progress reaches the console through it: see `printProgress`.
 */
export interface RunConsole extends Logger {
  progress(p: Progress): void;
  /** Clears the live display: the run is over, its summary follows as lines. */
  endDisplay(): void;
}

export interface RunConsoleOptions {
  readonly format: "text" | "json";
  readonly quiet: boolean;
  readonly component: string;
  readonly expectedWorkers: number;
  /** Given every progress tick first, with the console to log through (the status file and the timeline). */
  readonly onProgress?: (p: Progress, log: Logger) => void;
  /** A terminal: redraw a live display instead of printing lines (default: whether stderr is one). */
  readonly tty?: boolean;
  readonly write?: (s: string) => void;
  readonly columns?: () => number;
  readonly now?: () => number;
}

export function createRunConsole(options: RunConsoleOptions): RunConsole {
  const write = options.write ?? ((s: string) => process.stderr.write(s));
  const now = options.now ?? Date.now;
  const startedMs = now();
  const tty = options.tty ?? (process.stderr.isTTY === true && options.format === "text");
  const columns = options.columns ?? (() => process.stderr.columns || 100);
  let shown = 0; // lines of the live display on screen
  let last: Progress | null = null;
  const clear = () => {
    if (shown > 0) write(`\x1b[${shown}A\x1b[0J`);
    shown = 0;
  };
  const draw = () => {
    if (!last) return;
    const lines = renderLive(last, {
      elapsedSec: (now() - startedMs) / 1000,
      width: columns(),
      expectedWorkers: options.expectedWorkers,
    });
    write(`${lines.join("\n")}\n`);
    shown = lines.length;
  };
  const base = createLogger(options.format, { component: options.component }, (line) => {
    if (tty && shown > 0) {
      clear();
      write(`${line}\n`);
      draw();
    } else write(`${line}\n`);
  });
  const log = options.quiet ? quietLogger(base, options.format) : base;

  return {
    ...log,
    progress(p) {
      last = p;
      options.onProgress?.(p, log);
      if (options.quiet) return;
      if (options.format === "json") base.info("progress", { event: "progress", ...p });
      else if (tty) {
        clear();
        draw();
      } else base.info(progressLine(p));
    },
    endDisplay() {
      if (tty) clear();
      last = null;
    },
  };
}

function isRunConsole(log: Logger): log is RunConsole {
  return typeof (log as Partial<RunConsole>).progress === "function";
}

/** The live figures: to the run's console when the logger is one, else a line (or a JSON line). */
export function printProgress(p: Progress, log: Logger, format: "text" | "json"): void {
  if (isRunConsole(log)) {
    log.progress(p);
    return;
  }
  if (format === "json") {
    log.info("progress", { event: "progress", ...p });
    return;
  }
  log.info(progressLine(p));
}

/** The compact line printed every few seconds when stderr is not a terminal. */
export function progressLine(p: Progress): string {
  const stage = p.stage === "dirs" ? " (directories)" : "";
  return (
    `${p.phase}${stage}: written ${p.written}, validated ${p.validated}, failed ${p.failed} | ` +
    `${p.filesPerSec} entries/s, ${p.mbPerSec} MB/s | batches ${p.batchesDone}/${p.batchesSent} | ` +
    `workers ${p.workersAlive}${p.workersLost ? ` (${p.workersLost} lost)` : ""}`
  );
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const clock = (sec: number) => {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
};
const size = (b: number) =>
  b >= 1e9
    ? `${(b / 1e9).toFixed(2)} GB`
    : b >= 1e6
      ? `${(b / 1e6).toFixed(1)} MB`
      : `${(b / 1e3).toFixed(1)} kB`;

/**
 * The live display on a terminal, as lines (pure): the phase with a bar of the batches done out of those
 * sent, then entries, bytes, rates, the time left for what was sent, workers and failures. While the crawl
 * still runs, more batches come, so the bar and the ETA are of what was sent so far.
 */
export function renderLive(
  p: Progress,
  ctx: { elapsedSec: number; width: number; expectedWorkers: number },
): string[] {
  const working = p.phase === "WRITE" || p.phase === "VALIDATE";
  const stage = !working
    ? ""
    : p.stage === "dirs"
      ? " (directories)"
      : p.stage === "content"
        ? " (files)"
        : "";
  const title = `${p.phase}${stage}`;
  const lines: string[] = [];
  if (working && p.batchesSent > 0) {
    const ratio = Math.min(1, p.batchesDone / p.batchesSent);
    const barWidth = Math.max(10, Math.min(40, ctx.width - title.length - 40));
    const filled = Math.round(ratio * barWidth);
    const bar = `${"█".repeat(filled)}${"░".repeat(barWidth - filled)}`;
    lines.push(
      `${title}  ${bar} ${String(Math.round(ratio * 100)).padStart(3)}%  batches ${fmt(p.batchesDone)}/${fmt(p.batchesSent)} · ${fmt(p.entriesSent)} entries sent`,
    );
    const left = p.entriesSent * (1 - ratio);
    const eta = p.filesPerSec > 0 ? clock(left / p.filesPerSec) : "--:--";
    lines.push(
      `  written ${fmt(p.written)} · validated ${fmt(p.validated)} · ${size(p.bytes)} · ${fmt(p.filesPerSec)} files/s · ${p.mbPerSec.toFixed(1)} MB/s · ETA ${eta}`,
    );
  } else {
    lines.push(`${title}  waiting (${clock(ctx.elapsedSec)} elapsed)`);
  }
  const lost = p.workersLost > 0 ? `, ${p.workersLost} lost` : "";
  lines.push(
    `  workers ${p.workersAlive}/${ctx.expectedWorkers} alive${lost} · failures ${fmt(p.failed)} · ${clock(ctx.elapsedSec)} elapsed`,
  );
  return lines.map((l) => (l.length > ctx.width ? `${l.slice(0, Math.max(1, ctx.width - 1))}…` : l));
}

export function printSummary(r: RunReport, log: Logger, reportFile?: string): void {
  const lines = [
    `run ${r.runId} ${r.outcome.toUpperCase()}${r.failureReason ? ` (${r.failureReason})` : ""} in ${r.durationSec} s`,
    `  entries ${r.entries}, ${(r.bytes / 1e6).toFixed(1)} MB`,
    `  write: ${r.write.ok} ok, ${r.write.failed} failed, ${r.write.skipped} skipped, ${r.write.unchanged} unchanged` +
      `  (${r.rates.writeFilesPerSec} entries/s, ${r.rates.writeMBPerSec} MB/s)`,
    `  validate: ${r.validate.ok} ok, ${r.validate.failed} failed`,
  ];
  if (r.notAttempted > 0) lines.push(`  not attempted: ${r.notAttempted}`);
  lines.push(
    `  workers: ${r.workers.length} (${r.workers.filter((w) => w.state === "LOST").length} lost${spotDrained(r)}); ` +
      `redelivered batches ${r.delivery.redelivered}, duplicates ${r.delivery.duplicates}, ` +
      `SQS requests per entry ${r.delivery.sqsRequestsPerEntry}`,
  );
  for (const e of r.errors.slice(0, 20))
    lines.push(`  ERROR ${e.phase} ${JSON.stringify(e.path)}: ${e.reason}`);
  if (r.errors.length > 20) lines.push(`  … and ${r.errors.length - 20} more errors (see the report)`);
  for (const e of r.skipped.slice(0, 10)) lines.push(`  skipped ${JSON.stringify(e.path)}: ${e.reason}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  if (reportFile) lines.push(`  report: ${reportFile}`);
  log.info(lines.join("\n"), { event: "summary", outcome: r.outcome });
}

/** `, 1 drained after a Spot interruption (w2)`, or nothing. */
function spotDrained(r: RunReport): string {
  const ids = r.workers.filter((w) => w.stopped?.reason === "spot interruption").map((w) => w.id);
  return ids.length === 0 ? "" : `, ${ids.length} drained after a Spot interruption (${ids.join(", ")})`;
}

export async function writeReport(file: string, report: RunReport): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`);
  await fs.rename(tmp, file);
}
