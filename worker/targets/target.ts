/** What a worker writes entries to and checks them in: a file system (a yas3fs mount) or an S3 bucket. */
import type { Stage, TocEntry } from "../../core/messages.ts";

export interface EntryOutcome {
  /** `unchanged`: already in the target as in the source, not written again (counted, not listed). */
  readonly status: "ok" | "failed" | "skipped" | "unchanged";
  readonly bytes: number;
  readonly reason?: string;
  /** The entry's checksum when this target knows it (`crc32:BASE64`), for the manifest. */
  readonly checksum?: string;
}

export interface Target {
  /** Where it writes, for logs. */
  readonly description: string;
  init(): Promise<void>;
  /** Writes one entry; never throws: every failure is an outcome with a reason. */
  write(entry: TocEntry, stage: Stage, signal: AbortSignal): Promise<EntryOutcome>;
  /** Checks one entry in the target against the source; never throws. */
  check(entry: TocEntry, signal: AbortSignal): Promise<EntryOutcome>;
  /**
   * Writes a whole WRITE batch at once, when this target does so (a directory with the rsync copier): one
   * outcome per entry, in order. Without it each entry goes through `write`.
   */
  readonly writeBatch?:
    | ((entries: readonly TocEntry[], stage: Stage, signal: AbortSignal) => Promise<EntryOutcome[]>)
    | undefined;
}

export const ok = (bytes = 0): EntryOutcome => ({ status: "ok", bytes });
export const failed = (reason: string): EntryOutcome => ({ status: "failed", bytes: 0, reason });
