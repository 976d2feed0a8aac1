/**
 * Packs TOC entries into batches, one SQS message each: up to `maxEntries` entries, up to `maxBodyBytes` of
 * message body, and up to `maxFileBytes` of file data (a file larger than that travels in a batch of its own,
 * so one huge file never holds up many small ones). Pure: the caller decides when to flush a partial batch.
 */
import { MAX_MESSAGE_BYTES, type TocEntry, wireEntryBytes } from "../core/messages.ts";

export interface BatchLimits {
  readonly maxEntries: number;
  /**
   * The first batch holds at most this many entries, each next one half as many more, up to `maxEntries`:
   * small batches first so that every worker gets work at once, large ones later so that SQS costs little.
   */
  readonly startEntries: number;
  readonly maxFileBytes: number;
  readonly maxBodyBytes: number;
}

/** Room left for the message envelope (type, run id, phase, batch number). */
const ENVELOPE_BYTES = 512;

export const defaultLimits = (maxEntries: number, maxFileBytes: number): BatchLimits => ({
  maxEntries,
  startEntries: Math.min(maxEntries, 16),
  maxFileBytes,
  maxBodyBytes: MAX_MESSAGE_BYTES - ENVELOPE_BYTES,
});

export class TocBatcher {
  private entries: TocEntry[] = [];
  private bodyBytes = 0;
  private fileBytes = 0;
  private entryLimit: number;

  constructor(private readonly limits: BatchLimits) {
    this.entryLimit = Math.max(1, Math.min(limits.startEntries, limits.maxEntries));
  }

  get pending(): number {
    return this.entries.length;
  }

  /** Adds an entry; returns the batches that became full (zero, one, or two when a big file closes one). */
  add(entry: TocEntry): TocEntry[][] {
    const full: TocEntry[][] = [];
    const bytes = wireEntryBytes(entry);
    if (bytes > this.limits.maxBodyBytes) {
      throw new Error(`TOC entry ${JSON.stringify(entry.path.slice(0, 80))} is too large for a message`);
    }
    const fileBytes = entry.kind === "file" ? entry.size : 0;
    const wouldOverflow =
      this.entries.length + 1 > this.entryLimit ||
      this.bodyBytes + bytes > this.limits.maxBodyBytes ||
      (this.entries.length > 0 && this.fileBytes + fileBytes > this.limits.maxFileBytes);
    if (wouldOverflow) {
      const b = this.flush();
      if (b) full.push(b);
    }
    this.entries.push(entry);
    this.bodyBytes += bytes;
    this.fileBytes += fileBytes;
    if (this.entries.length >= this.entryLimit || this.fileBytes >= this.limits.maxFileBytes) {
      const b = this.flush();
      if (b) full.push(b);
    }
    return full;
  }

  /** Returns the partial batch, if any, and starts a new one. */
  flush(): TocEntry[] | null {
    if (this.entries.length === 0) return null;
    const b = this.entries;
    this.entries = [];
    this.entryLimit = Math.min(this.limits.maxEntries, Math.ceil(this.entryLimit * 1.5));
    this.bodyBytes = 0;
    this.fileBytes = 0;
    return b;
  }
}
