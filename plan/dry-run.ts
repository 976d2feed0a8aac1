/**
 * `--dry-run` on `master` and `local`: everything a run does before the copies, and nothing after. It checks
 * the settings, walks the source through the same TOC source and filters the run would use, writes the TOC
 * files the run would write (`<stateDir>/runs/<runId>/toc.jsonl` and `dirs.jsonl`), packs the batches it
 * would send, and prints the counts, what the report would list and the estimate. It starts no emulator and
 * no worker, creates and sends nothing, and makes no AWS call.
 */
import type { ConfigOf } from "../core/config.ts";
import { runDir, tocFiles } from "../core/run-paths.ts";
import type { WriteOptions } from "../core/write-options.ts";
import { goneSince, previousRun } from "../master/deletions.ts";
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
  /** `--delete`: also show what the run would delete (against the previous successful run's TOC). */
  readonly deletions?: boolean;
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
  const deletions = o.deletions ? await wouldDelete(o) : undefined;
  if (o.json) write(`${JSON.stringify({ dryRun: true, runId: o.runId, ...view, deletions }, null, 2)}\n`);
  else {
    write(`DRY RUN ${o.runId}: nothing is copied, sent or created\n${renderPlan(view)}`);
    if (deletions) write(renderDeletions(deletions));
  }
  return 0;
}

interface WouldDelete {
  readonly previousRun: string | null;
  readonly paths: readonly string[];
  readonly note: string | null;
}

/** What `--delete` would remove after this TOC: the previous successful run's entries it no longer has. */
async function wouldDelete(o: DryRunOptions): Promise<WouldDelete> {
  if (!o.target) return { previousRun: null, paths: [], note: "no target given: nothing to compare" };
  const prev = await previousRun(o.stateDir, o.runId, o.source, o.target);
  if ("none" in prev) return { previousRun: null, paths: [], note: prev.none };
  const dir = runDir(o.stateDir, o.runId);
  const gone = await goneSince(tocFiles(prev.dir), tocFiles(dir), dir);
  return { previousRun: prev.runId, paths: gone.map((g) => g.path).sort(), note: null };
}

/** Shown in full up to this many paths; the JSON output has them all. */
const SHOWN_PATHS = 50;

function renderDeletions(d: WouldDelete): string {
  if (!d.previousRun) return `--delete would delete nothing: ${d.note}\n`;
  const lines = [`--delete would delete ${d.paths.length} entries (gone since run ${d.previousRun})`];
  for (const p of d.paths.slice(0, SHOWN_PATHS)) lines.push(`    ${JSON.stringify(p)}`);
  if (d.paths.length > SHOWN_PATHS)
    lines.push(`    … and ${d.paths.length - SHOWN_PATHS} more (--log-format json lists all)`);
  return `${lines.join("\n")}\n`;
}
