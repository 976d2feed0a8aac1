/**
 * Where a run keeps its files, defined once: `<stateDir>/runs/<runId>/` holds the TOC files, the run record,
 * the status file and the local workers' logs. The master, the local run, the dry run, `status` and the
 * master host's boot script (rendered in lib/) all take their paths from here.
 */
import path from "node:path";

/** The folder of every run under the state directory (and the S3 prefix the master host publishes under). */
export const RUNS_DIR = "runs";
/** The run's latest figures, rewritten at every progress tick: what `status` reads. */
export const STATUS_FILE = "status.json";
/** The run record: its attempts and the batch numbers reserved (master/run-record.ts). */
export const RUN_RECORD_FILE = "run.json";
/** The TOC as crawled: files, symlinks and the like; directories in their own file for the last WRITE stage. */
export const TOC_FILE = "toc.jsonl";
export const DIRS_FILE = "dirs.jsonl";

/** `<stateDir>/runs/<runId>`. */
export function runDir(stateDir: string, runId: string): string {
  return path.join(stateDir, RUNS_DIR, runId);
}

/** The run's TOC files. */
export function tocFiles(dir: string): { readonly toc: string; readonly dirs: string } {
  return { toc: path.join(dir, TOC_FILE), dirs: path.join(dir, DIRS_FILE) };
}

/** A local worker's log: `worker-N.log` in the run's folder. */
export function workerLog(dir: string, n: number | "N"): string {
  return path.join(dir, `worker-${n}.log`);
}
