/** What every row of the benchmark gets: the sizes of this mode, the places to work in, the shared emulator. */
import fs from "node:fs/promises";
import path from "node:path";
import type { BenchEmulator } from "./emulator.ts";
import type { OursContext, OursRun } from "./ours.ts";

export interface Sizes {
  readonly crawlFiles: number;
  readonly crawlReps: number;
  readonly localFiles: number;
  readonly localReps: number;
  readonly slowFiles: number;
  readonly slowReps: number;
  readonly s3Files: number;
  readonly s3Reps: number;
  readonly fixedReps: number;
  /** The real tree: a copy of this directory of the system (a tree no one here made). */
  readonly realSource: string;
  readonly realReps: number;
  /** The big TOC, and a smaller one to show whether the master's memory grows with the count. */
  readonly tocFiles: number;
  readonly tocSmallFiles: number;
}

export const FULL: Sizes = {
  crawlFiles: 200_000,
  crawlReps: 5,
  localFiles: 20_000,
  localReps: 5,
  slowFiles: 5_000,
  slowReps: 3,
  s3Files: 20_000,
  s3Reps: 3,
  fixedReps: 5,
  realSource: "/usr/share",
  realReps: 3,
  tocFiles: 1_000_000,
  tocSmallFiles: 100_000,
};

export const QUICK: Sizes = {
  crawlFiles: 50_000,
  crawlReps: 2,
  localFiles: 5_000,
  localReps: 2,
  slowFiles: 800,
  slowReps: 2,
  s3Files: 2_000,
  s3Reps: 2,
  fixedReps: 3,
  realSource: "/usr/share/doc",
  realReps: 1,
  tocFiles: 20_000,
  tocSmallFiles: 5_000,
};

/**
 * Our tool's settings per row: two worker processes (this machine has two cores), and enough concurrent
 * handlers per worker to hide each row's latency (disk, a filer's round trips, HTTP to the emulator).
 */
export const OURS = {
  local: { workers: 2, concurrency: 32 },
  slow: { workers: 2, concurrency: 128 },
  s3: { workers: 2, concurrency: 64 },
  toc: { workers: 2, concurrency: 64 },
} as const;

/** Round trip of the slow source, in microseconds: a filer on a LAN. */
export const SLOW_DELAY_US = 1000;

export interface BenchContext {
  readonly repo: string;
  readonly quick: boolean;
  readonly sizes: Sizes;
  readonly treesDir: string;
  readonly binDir: string;
  /** Targets and mounts of this run; removed at the end, never between timed runs. */
  readonly scratchDir: string;
  readonly emulator: BenchEmulator;
  readonly ours: OursContext;
  /** Every run of our tool, for the rows that look across all of them (worker memory). */
  readonly oursRuns: { readonly row: string; readonly run: OursRun }[];
  log(message: string): void;
}

let scratchCount = 0;

/** A new empty directory under the run's scratch directory. */
export async function freshDir(ctx: BenchContext, label: string): Promise<string> {
  scratchCount++;
  const dir = path.join(ctx.scratchDir, `${label}-${scratchCount}`);
  await fs.mkdir(dir, { recursive: true });
  return dir;
}
