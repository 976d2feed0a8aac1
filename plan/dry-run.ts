/**
 * `--dry-run` on `master` and `local`: everything a run does before the copies, and nothing after. It checks
 * the settings, walks the source through the same TOC source and filters the run would use, writes the TOC
 * files the run would write (`<stateDir>/runs/<runId>/toc.jsonl` and `dirs.jsonl`), packs the batches it
 * would send, and prints the counts, what the report would list and the estimate. It starts no emulator and
 * no worker, creates and sends nothing, and makes no AWS call.
 */
import type { ConfigOf } from "../core/config.ts";
import { runDir } from "../core/run-paths.ts";
import type { WriteOptions } from "../core/write-options.ts";
import type { TocSourceOptions } from "../toc/toc-source.ts";
import { makePlan } from "./plan-run.ts";
import { renderPlan } from "./render.ts";
import type { estimateSettings } from "./settings.ts";

export interface DryRunOptions {
  readonly source: string;
  /** The workers' target when known (local); the master assumes an s3:// one for the estimate. */
  readonly target: string | undefined;
  readonly runId: string;
  readonly stateDir: string;
  readonly toc: TocSourceOptions;
  readonly workers: number;
  readonly batchEntries: number;
  readonly batchBytes: number;
  readonly estimate: ConfigOf<typeof estimateSettings>;
  /** The workers' write options when known (local), priced by the estimate. */
  readonly writes?: WriteOptions | undefined;
  readonly json: boolean;
  readonly write?: (s: string) => void;
}

export async function dryRun(o: DryRunOptions): Promise<number> {
  const write = o.write ?? ((s: string) => process.stdout.write(s));
  const view = await makePlan({
    source: o.source,
    target: o.target ?? "s3://bucket",
    toc: o.toc,
    workers: o.workers,
    targetEmpty: false,
    multipartThresholdMb: 8,
    partSizeMb: 8,
    estimate: o.estimate,
    writes: o.writes,
    dispatch: {
      runDir: runDir(o.stateDir, o.runId),
      batchEntries: o.batchEntries,
      batchBytes: o.batchBytes,
    },
  });
  if (o.json) write(`${JSON.stringify({ dryRun: true, runId: o.runId, ...view }, null, 2)}\n`);
  else write(`DRY RUN ${o.runId}: nothing is copied, sent or created\n${renderPlan(view)}`);
  return 0;
}
