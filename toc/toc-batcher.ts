/**
 * Packs TOC entries into batches, one SQS message each: up to `maxEntries` entries, up to `maxBodyBytes` of
 * message body, and up to `maxFileBytes` of file data (a file larger than that travels in a batch of its own,
 * so one huge file never holds up many small ones). Pure: the caller decides when to flush a partial batch.
 * `InterleavingBatcher` mixes directories first, so that a batch spreads over several S3 prefixes.
 */
import { MAX_MESSAGE_BYTES, type TocEntry, wireEntryBytes } from "../core/messages.ts";
import { prefixOf } from "../core/prefix-pacer.ts";

export interface BatchLimits {
  readonly maxEntries: number;
  /**
   * The first batch holds at most this many entries, each next one half as many more, up to `maxEntries`:
   * small batches first so that every worker gets work at once, large ones later so that SQS costs little.
   */
  readonly startEntries: number;
  readonly maxFileBytes: number;
  readonly maxBodyBytes: number;
  /** Entries held back at most to mix directories (see InterleavingBatcher). */
  readonly windowEntries: number;
}

/** Room left for the message envelope (type, run id, phase, batch number). */
const ENVELOPE_BYTES = 512;

export const defaultLimits = (maxEntries: number, maxFileBytes: number): BatchLimits => ({
  maxEntries,
  startEntries: Math.min(maxEntries, 16),
  maxFileBytes,
  maxBodyBytes: MAX_MESSAGE_BYTES - ENVELOPE_BYTES,
  windowEntries: Math.min(20_000, Math.max(1_000, 4 * maxEntries)),
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

/** The entries of one directory waiting in the window, oldest first from `head`. */
interface Lane {
  readonly dir: string;
  entries: TocEntry[];
  head: number;
}

/**
 * A `TocBatcher` fed through a window that mixes directories. The TOC lists a directory's entries together,
 * and S3 gives each prefix (a directory, for yas3fs keys: see core/prefix-pacer.ts) its own request rate: batches
 * of one directory each would send the whole fleet at one prefix at a time. Here entries wait in one lane per
 * parent directory, at most `windowEntries` of them in all, and leave one at a time round-robin over the lanes
 * (one for each entry that comes in once the window is full). Memory stays bounded by the window whatever the
 * TOC's length; each entry still goes into exactly one batch. A directory larger than the window is mixed with
 * what else the window holds, and is otherwise sent in its own order (the workers' pacing covers the rest).
 */
export class InterleavingBatcher {
  private readonly batcher: TocBatcher;
  private readonly lanes = new Map<string, Lane>();
  private ring: Lane[] = [];
  private turn = 0;
  private held = 0;

  constructor(private readonly limits: BatchLimits) {
    this.batcher = new TocBatcher(limits);
  }

  /** Entries held: in the window, and in the partial batch. */
  get pending(): number {
    return this.held + this.batcher.pending;
  }

  /** Adds an entry; returns the batches that became full. */
  add(entry: TocEntry): TocEntry[][] {
    const dir = prefixOf(entry.path);
    let lane = this.lanes.get(dir);
    if (!lane) {
      lane = { dir, entries: [], head: 0 };
      this.lanes.set(dir, lane);
      this.ring.push(lane);
    }
    lane.entries.push(entry);
    this.held++;
    return this.held > Math.max(0, this.limits.windowEntries) ? this.batcher.add(this.release()) : [];
  }

  /** Sends every held entry on, round-robin, and returns the batches, the partial last one too. */
  flush(): TocEntry[][] {
    const out: TocEntry[][] = [];
    while (this.held > 0) out.push(...this.batcher.add(this.release()));
    const last = this.batcher.flush();
    if (last) out.push(last);
    return out;
  }

  /** The next lane's oldest entry; the lane leaves the ring when it is empty. */
  private release(): TocEntry {
    if (this.turn >= this.ring.length) this.turn = 0;
    const lane = this.ring[this.turn] as Lane;
    const entry = lane.entries[lane.head++] as TocEntry;
    this.held--;
    if (lane.head === lane.entries.length) {
      this.lanes.delete(lane.dir);
      this.ring.splice(this.turn, 1);
    } else {
      // A lane that never empties (a directory larger than the window) drops what it has sent now and then.
      if (lane.head >= 1_024 && lane.head * 2 >= lane.entries.length) {
        lane.entries = lane.entries.slice(lane.head);
        lane.head = 0;
      }
      this.turn++;
    }
    return entry;
  }
}
