/** What the master shows people: a live line while it runs, a summary at the end, the report file. */
import fs from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../core/log.ts";
import type { RunReport } from "./report.ts";
import type { Progress } from "./run-master.ts";

export function printProgress(p: Progress, log: Logger, format: "text" | "json"): void {
  if (format === "json") {
    log.info("progress", { event: "progress", ...p });
    return;
  }
  const stage = p.stage === "dirs" ? " (directories)" : "";
  log.info(
    `${p.phase}${stage}: written ${p.written}, validated ${p.validated}, failed ${p.failed} | ` +
      `${p.filesPerSec} entries/s, ${p.mbPerSec} MB/s | batches ${p.batchesDone}/${p.batchesSent} | ` +
      `workers ${p.workersAlive}${p.workersLost ? ` (${p.workersLost} lost)` : ""}`,
  );
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
    `  workers: ${r.workers.length} (${r.workers.filter((w) => w.state === "LOST").length} lost); ` +
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

export async function writeReport(file: string, report: RunReport): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`);
  await fs.rename(tmp, file);
}
