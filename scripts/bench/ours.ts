/**
 * One whole load with our tool, as a user runs it: `s3-bucket-loader local` (the master in that process, N
 * worker processes) against the benchmark's emulator. Returns its report and the figures the rows need.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { RunReport } from "../../master/report.ts";
import type { BenchEmulator, SqsCounts } from "./emulator.ts";
import { run } from "./proc.ts";

export interface OursOptions {
  readonly source: string;
  readonly target: string;
  readonly workers: number;
  readonly concurrency: number;
  readonly extra?: readonly string[];
  readonly timeoutMs: number;
}

export interface OursRun {
  readonly report: RunReport;
  /** The whole command, spawn to exit, as the user waits for it. */
  readonly wallMs: number;
  /** Entries per second over the whole command: the headline figure. */
  readonly entriesPerSec: number;
  /** User + system CPU seconds of the command's processes (master and workers; the emulator is not ours). */
  readonly cpuSec: number | null;
  /** Entries per second over the WRITE phase alone (the crawl runs inside it): the second column. */
  readonly writeEntriesPerSec: number;
  /** Every SQS request any program made between the start of WRITE and the end of VALIDATE. */
  readonly sqs: SqsCounts;
  readonly writeStartMs: number;
  /** When the master wrote its last TOC line: the end of the crawl. */
  readonly crawlEndMs: number | null;
}

export interface OursContext {
  readonly repo: string;
  readonly emulator: BenchEmulator;
  readonly stateDir: string;
}

let runs = 0;

export async function runOurs(ctx: OursContext, o: OursOptions): Promise<OursRun> {
  runs++;
  const report = path.join(ctx.stateDir, `report-${process.pid}-${runs}.json`);
  const args = [
    path.join(ctx.repo, "dist/s3-bucket-loader.mjs"),
    "local",
    ...["--source", o.source, "--target", o.target],
    ...["--workers", String(o.workers), "--concurrency", String(o.concurrency)],
    ...["--report", report, "--endpoint-url", ctx.emulator.url, "--state-dir", ctx.stateDir],
    ...["--name-prefix", `bench-${runs}`, "--log-format", "json"],
    ...(o.extra ?? []),
  ];
  const r = await run(process.execPath, args, {
    timeoutMs: o.timeoutMs,
    // The benchmark's emulator takes any keys; ours, not the user's, whatever the environment holds.
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
    },
    discardStdout: true,
    measureCpu: true,
  });
  const text = await fs.readFile(report, "utf8").catch(() => null);
  if (r.code !== 0 || text === null) {
    throw new Error(`our run exited with ${r.code}: ${r.stderr.trim().split("\n").slice(-5).join("\n")}`);
  }
  const rep = JSON.parse(text) as RunReport;
  const write = rep.phases.WRITE;
  const validate = rep.phases.VALIDATE;
  if (!write?.end || !validate?.end) throw new Error(`our run has no finished WRITE and VALIDATE: ${text}`);
  const writeStartMs = Date.parse(write.start);
  const sqs = await ctx.emulator.sqsRequests(writeStartMs, Date.parse(validate.end));
  const toc = await fs.stat(path.join(ctx.stateDir, "runs", rep.runId, "toc.jsonl")).catch(() => null);
  return {
    report: rep,
    wallMs: r.ms,
    entriesPerSec: rep.entries / (r.ms / 1000),
    cpuSec: r.cpuSec,
    writeEntriesPerSec: rep.rates.writeFilesPerSec,
    sqs,
    writeStartMs,
    crawlEndMs: toc ? toc.mtimeMs : null,
  };
}
