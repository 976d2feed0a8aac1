/**
 * The run's record on the master's disk, beside its TOC files: what a restarted master needs to resume the
 * run (when it started, which source, the batch numbers already used) and the history of its attempts.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { errnoOf } from "../core/errors.ts";
import { RUN_RECORD_FILE as FILE } from "../core/run-paths.ts";

export interface RunRecord {
  readonly runId: string;
  readonly source: string;
  /** The workers' target, when the master knows it (`--delete` compares runs of the same source and target). */
  readonly target?: string | undefined;
  readonly startedAtMs: number;
  /** One past the highest batch number any master of this run may have used. */
  readonly batchHighWater: number;
  readonly attempts: readonly {
    readonly startedAtMs: number;
    readonly endedAtMs?: number;
    readonly outcome?: string;
  }[];
}

export async function readRunRecord(runDir: string): Promise<RunRecord | null> {
  try {
    return JSON.parse(await fs.readFile(path.join(runDir, FILE), "utf8")) as RunRecord;
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return null;
    throw new Error(`the run record in ${runDir} cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

export async function writeRunRecord(runDir: string, record: RunRecord): Promise<void> {
  const file = path.join(runDir, FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
  await fs.rename(tmp, file);
}

/** Batch numbers a master reserves at a time: a resumed run starts above every reservation. */
export const BATCH_RESERVATION = 1_000_000;

/**
 * The high-water mark to record before batch numbers below `end` may be used, or null when the record
 * already covers them. Reserving ahead by `BATCH_RESERVATION` keeps the record's writes rare (one per million
 * batches), and a stage of any length stays inside what was recorded, so a resumed master never reuses one.
 */
export function reservationFor(batchHighWater: number, end: number): number | null {
  return end <= batchHighWater ? null : end + BATCH_RESERVATION;
}
