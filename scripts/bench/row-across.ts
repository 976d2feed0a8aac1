/** Rows read from our runs of the other rows: SQS requests per entry and the workers' peak memory. */
import type { BenchContext } from "./context.ts";
import { median } from "./proc.ts";
import { notMeasured, type Row } from "./table.ts";

export function sqsRow(ctx: BenchContext): Row {
  const measure = "SQS requests per entry, WRITE + VALIDATE";
  const perRow = new Map<string, { all: number[]; master: number[]; entries: number }>();
  for (const { row, run } of ctx.oursRuns) {
    const key = row === "toc" ? `toc-${run.report.entries}` : row;
    const r = perRow.get(key) ?? { all: [], master: [], entries: run.report.entries };
    r.all.push(run.sqs.total / run.report.entries);
    r.master.push(run.report.delivery.sqsRequestsPerEntry);
    perRow.set(key, r);
  }
  const headline = perRow.get("local") ?? perRow.values().next().value;
  if (!headline) return notMeasured("sqs", measure, "<= 0.05", "no run of ours finished");
  const ours = median(headline.all);
  const others = [...perRow.entries()]
    .map(([row, r]) => `${row} (${r.entries} entries) ${median(r.all).toFixed(4)}`)
    .join(", ");
  return {
    id: "sqs",
    measure,
    unit: "req/entry",
    ours,
    peer: null,
    peerValue: null,
    ratio: null,
    target: "<= 0.05",
    met: ours <= 0.05,
    note:
      `every SQS request of every program (master and workers, all queues, all actions), counted by the ` +
      `emulator between WRITE start and VALIDATE end, over the run's entries; figure of the fs-target runs ` +
      `(median). By row: ${others}. The master's own share (report delivery.sqsRequestsPerEntry, whole run): ` +
      `${median(headline.master).toFixed(4)}.`,
    detail: Object.fromEntries(perRow),
  };
}

export function workerRssRow(ctx: BenchContext): Row {
  const measure = "worker peak RSS under full load";
  let best: { mb: number; row: string; concurrency: number } | null = null;
  for (const { row, run } of ctx.oursRuns) {
    for (const w of run.report.workers) {
      const mb = w.peakRssBytes / 1e6;
      if (!best || mb > best.mb) best = { mb, row, concurrency: w.concurrency };
    }
  }
  if (!best) return notMeasured("worker-rss", measure, "<= 300 MB", "no run of ours finished");
  return {
    id: "worker-rss",
    measure,
    unit: "MB",
    ours: best.mb,
    peer: null,
    peerValue: null,
    ratio: null,
    target: "<= 300 MB",
    met: best.mb <= 300,
    note:
      `the largest workers[].peakRssBytes over all ${ctx.oursRuns.length} runs of ours in this benchmark ` +
      `(it was in the ${best.row} row, concurrency ${best.concurrency}).`,
  };
}
