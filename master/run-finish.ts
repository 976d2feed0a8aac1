/**
 * What a run does once its phases are over and before its report is final: the deletions (`--delete`) of what
 * the source lost since the previous successful run, and the verification manifest (`--manifest-out`).
 */

import type { Logger } from "../core/log.ts";
import type { ObjectStore } from "../core/object-store.ts";
import type { TargetDeleter } from "../core/ports.ts";
import { runDir, tocFiles } from "../core/run-paths.ts";
import { goneSince, previousRun } from "./deletions.ts";
import type { ManifestRecorder } from "./manifest.ts";
import { withManifest, writeManifest } from "./manifest-report.ts";
import type { MachineState } from "./phase-types.ts";
import { buildReport, type RunReport } from "./report.ts";

/** What a run leaves behind beyond its report (`--manifest-out`, `--delete`, `--max-delete`). */
export interface SyncOptions {
  /** The workers' target, when the master knows it: kept in the run record, and where `delete` removes. */
  readonly target?: string | undefined;
  readonly manifestOut?: string | undefined;
  readonly delete?: boolean | undefined;
  readonly maxDelete?: number | undefined;
}

export interface FinishContext {
  readonly ports: {
    readonly storeFor?: ((bucket: string) => ObjectStore) | undefined;
    /** Removes entries from the target (`--delete`). */
    readonly deleter?: TargetDeleter | undefined;
  };
  readonly options: {
    readonly runId: string;
    readonly stateDir: string;
    readonly source: string;
    readonly target: string;
    readonly sync?: SyncOptions | undefined;
    readonly log: Logger;
  };
  readonly manifest: ManifestRecorder | null;
  /** The master's own SQS requests. */
  readonly sqsRequests: number;
  readonly peakRssBytes: number;
  readonly now: () => number;
}

export async function finishRun(state: MachineState, c: FinishContext): Promise<RunReport> {
  const { options } = c;
  const out = options.sync?.manifestOut;
  const written =
    c.manifest && out ? await writeManifest(c.manifest, state, out, c.ports, options.log) : undefined;
  let report = buildReport(state, {
    source: options.source,
    target: options.target,
    endedAtMs: c.now(),
    sqsRequests: c.sqsRequests,
    masterPeakRssBytes: c.peakRssBytes,
  });
  if (options.sync?.delete) report = await deleteGone(report, c);
  return written ? withManifest(report, written) : report;
}

/** How long the deletions may take at most: then the run fails, saying what was left. */
const DELETE_TIMEOUT_MS = 30 * 60_000;

/**
 * `--delete` after VALIDATE: only when the run succeeded (a failed crawl or copy must not look like a source
 * that lost entries), and nothing at all when more would go than `--max-delete` allows.
 */
async function deleteGone(report: RunReport, c: FinishContext): Promise<RunReport> {
  const { options, ports } = c;
  const sync = options.sync ?? {};
  const none = (note: string, previousRun: string | null = null, paths: readonly string[] = []) => ({
    ...report,
    deletions: { previousRun, paths, deleted: 0, failed: [], note },
  });
  if (report.outcome !== "succeeded") return none("nothing deleted: the run did not succeed");
  if (!sync.target || !ports.deleter) return none("nothing deleted: the master does not know the target");
  const prev = await previousRun(options.stateDir, options.runId, options.source, sync.target);
  if ("none" in prev) return none(`nothing deleted: ${prev.none}`);
  const dir = runDir(options.stateDir, options.runId);
  const gone = await goneSince(tocFiles(prev.dir), tocFiles(dir), dir);
  const paths = gone.map((g) => g.path).sort();
  if (sync.maxDelete !== undefined && gone.length > sync.maxDelete) {
    const reason = `--delete would remove ${gone.length} entries that run ${prev.runId} held and this run's TOC has not, more than --max-delete ${sync.maxDelete}: nothing was deleted (check the source, or raise --max-delete)`;
    options.log.error(reason);
    return {
      ...none(reason, prev.runId, paths),
      outcome: "failed",
      failureReason: reason,
    };
  }
  options.log.info(
    `deleting ${gone.length} entries from ${ports.deleter.description} (gone since run ${prev.runId})`,
  );
  const failed = await ports.deleter.remove(gone, AbortSignal.timeout(DELETE_TIMEOUT_MS));
  const deletions = {
    previousRun: prev.runId,
    paths,
    deleted: gone.length - failed.length,
    failed,
    note: null,
  };
  if (failed.length === 0) return { ...report, deletions };
  const reason = `${failed.length} of ${gone.length} entries gone from the source could not be deleted from the target`;
  return { ...report, deletions, outcome: "failed", failureReason: reason };
}
