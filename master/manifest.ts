/**
 * The verification manifest (`--manifest-out`): one line per TOC entry with its final outcome, which is known
 * only once VALIDATE has checked it. Its memory stays flat however large the TOC:
 *
 * - while the run goes, `observe` keeps, per batch, how many entries it held (the dispatcher's `sizes`), and
 *   appends each counted WRITE result's per-entry letters and checksums to a file of the run's folder, with
 *   only that line's offset kept;
 * - at the end, `write` reads the TOC files once, in order, and walks the WRITE and VALIDATE batches beside
 *   them (the dispatcher packs batches in TOC order), joining each entry with its WRITE line (one batch's
 *   letters read at a time), whether its batches were counted, and the report's error or skip for its path.
 *
 * The lines are the report's entries: the content entries issued, the directories once the crawl ended, and
 * the entries the crawl could not read (which never reached the TOC files).
 */
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { EntryMark, TocEntry } from "../core/messages.ts";
import type { ObjectStore } from "../core/object-store.ts";
import { readTocFile } from "../toc/toc-file.ts";
import { encodeManifestLine, type ManifestLine, outcomeOf } from "./manifest-line.ts";
import { openManifestSink } from "./manifest-sink.ts";
import { writeFailures } from "./phase-results.ts";
import type { MachineEvent, MachineState } from "./phase-types.ts";

/** The per-entry letters and checksums of counted WRITE results, one JSON line per batch. */
export const WRITE_MARKS_FILE = "write-marks.jsonl";

/** The batches of one stage, in order: the first number and each batch's entry count. */
interface StageBatches {
  first: number;
  sizes: number[];
}

export interface ManifestOutcome {
  readonly destination: string;
  readonly lines: number;
}

export class ManifestRecorder {
  private readonly stages = new Map<string, StageBatches>();
  private readonly marks: WriteStream;
  private marksBytes = 0;
  /** Offset and length of each counted WRITE batch's line in the marks file. */
  private readonly marksAt = new Map<number, { offset: number; length: number }>();
  private marksError: Error | null = null;
  private crawlDone = false;
  /** VALIDATE sends every entry but these (fixed when its stage starts). */
  private validateExcluded: ReadonlySet<string> | null = null;
  private readonly crawlEntries: { path: string; outcome: "failed" | "skipped"; reason: string }[] = [];

  constructor(
    private readonly runDir: string,
    private readonly files: { readonly toc: string; readonly dirs: string },
  ) {
    this.marks = createWriteStream(path.join(runDir, WRITE_MARKS_FILE), { flags: "w" });
    this.marks.on("error", (err) => {
      this.marksError ??= err;
    });
  }

  /** Takes one step of the machine: the event and the states before and after it. */
  observe(prev: MachineState, e: MachineEvent, next: MachineState): void {
    const d = next.dispatch;
    if (d?.phase === "VALIDATE" && prev.dispatch?.phase !== "VALIDATE")
      this.validateExcluded = writeFailures(next);
    switch (e.type) {
      case "batches-issued": {
        if (!d || !e.sizes) return;
        const key = `${d.phase}/${d.stage}`;
        const stage = this.stages.get(key) ?? { first: e.first, sizes: [] };
        this.stages.set(key, stage);
        // Batches are issued in order from the stage's first (phase-results.ts says so loudly otherwise).
        if (e.first === stage.first + stage.sizes.length) stage.sizes.push(...e.sizes);
        return;
      }
      case "dispatch-complete":
        if (prev.dispatch?.phase === "WRITE" && prev.dispatch.stage === "content") this.crawlDone = true;
        return;
      case "crawl-issue":
        if (e.isEntry)
          this.crawlEntries.push({ path: e.issue.path, outcome: e.outcome, reason: e.issue.reason });
        return;
      case "summary":
        for (const r of e.message.batches) {
          if (
            r.phase !== "WRITE" ||
            !r.marks ||
            prev.doneBatches.has(r.batch) ||
            !next.doneBatches.has(r.batch)
          )
            continue;
          if (this.marksAt.has(r.batch)) continue;
          const line = `${JSON.stringify({ batch: r.batch, marks: r.marks, checksums: r.checksums ?? null })}\n`;
          const length = Buffer.byteLength(line);
          this.marksAt.set(r.batch, { offset: this.marksBytes, length });
          this.marksBytes += length;
          this.marks.write(line);
        }
        return;
      default:
        return;
    }
  }

  /** Writes the manifest from the run's final state; returns where it went and how many lines it has. */
  async write(
    state: MachineState,
    destination: string,
    storeFor: ((bucket: string) => ObjectStore) | undefined,
    signal?: AbortSignal,
  ): Promise<ManifestOutcome> {
    if (!this.marks.closed) {
      this.marks.end();
      await once(this.marks, "close");
    }
    if (this.marksError) {
      throw new Error(`the WRITE results could not be kept for the manifest: ${this.marksError.message}`, {
        cause: this.marksError,
      });
    }
    const issues = issuesByPath(state);
    const sink = openManifestSink(destination, storeFor, signal);
    const marksFile = await fs.open(path.join(this.runDir, WRITE_MARKS_FILE), "r");
    let lines = 0;
    let pending = "";
    const put = async (line: ManifestLine) => {
      lines++;
      pending += encodeManifestLine(line);
      if (pending.length >= 64 * 1024) {
        const text = pending;
        pending = "";
        await sink.write(text);
      }
    };
    try {
      const marks = marksReader(marksFile, this.marksAt);
      const validate = cursor(this.stages.get("VALIDATE/content"));
      const excluded = this.validateExcluded;
      const pass = async (file: string, write: Cursor, all: boolean) => {
        for await (const entry of readTocFile(file)) {
          const writtenIn = write.next();
          if (writtenIn === null && !all) return; // the rest of the crawl was never issued: not entries of the run
          const checkedIn = excluded && !excluded.has(entry.path) ? validate.next() : null;
          const result = writtenIn ? await marks(writtenIn.batch) : null;
          const facts = {
            issue: issues.get(entry.path),
            written: writtenIn !== null && state.doneBatches.has(writtenIn.batch),
            mark: writtenIn && result ? (result.marks[writtenIn.index] as EntryMark | undefined) : undefined,
            checked: checkedIn !== null && state.doneBatches.has(checkedIn.batch),
          };
          const checksum = writtenIn && result?.checksums ? result.checksums[writtenIn.index] || null : null;
          await put(lineOf(entry, checksum, outcomeOf(facts)));
        }
      };
      await pass(this.files.toc, cursor(this.stages.get("WRITE/content")), false);
      if (this.crawlDone) await pass(this.files.dirs, cursor(this.stages.get("WRITE/dirs")), true);
      for (const c of this.crawlEntries) {
        const line = { path: c.path, kind: null, size: null, mtimeNs: null, checksum: null };
        await put({ ...line, outcome: c.outcome, reason: c.reason });
      }
      if (pending) await sink.write(pending);
    } finally {
      await marksFile.close();
      await sink.close();
    }
    return { destination, lines };
  }
}

function lineOf(
  e: TocEntry,
  checksum: string | null,
  o: { outcome: ManifestLine["outcome"]; reason: string | null },
): ManifestLine {
  return { path: e.path, kind: e.kind, size: e.size, mtimeNs: e.mtimeNs, checksum, ...o };
}

/** The report's errors and skips by path (an error wins); hook failures name workers, not entries. */
function issuesByPath(s: MachineState): Map<string, { outcome: "failed" | "skipped"; reason: string }> {
  const map = new Map<string, { outcome: "failed" | "skipped"; reason: string }>();
  for (const i of s.skipped)
    if (i.phase !== "hook") map.set(i.path, { outcome: "skipped", reason: i.reason });
  for (const i of s.errors) if (i.phase !== "hook") map.set(i.path, { outcome: "failed", reason: i.reason });
  return map;
}

interface Cursor {
  /** The next entry's batch and its place in it, or null past the stage's last batch. */
  next(): { batch: number; index: number } | null;
}

function cursor(stage: StageBatches | undefined): Cursor {
  let k = 0;
  let index = 0;
  return {
    next() {
      if (!stage) return null;
      while (k < stage.sizes.length && index >= (stage.sizes[k] ?? 0)) {
        k++;
        index = 0;
      }
      if (k >= stage.sizes.length) return null;
      return { batch: stage.first + k, index: index++ };
    },
  };
}

/** Reads one batch's WRITE line at a time (the pass asks for each batch's entries in a row). */
function marksReader(
  file: fs.FileHandle,
  at: ReadonlyMap<number, { offset: number; length: number }>,
): (batch: number) => Promise<{ marks: string; checksums: string[] | null } | null> {
  let cached: { batch: number; value: { marks: string; checksums: string[] | null } | null } | null = null;
  return async (batch) => {
    if (cached?.batch === batch) return cached.value;
    const where = at.get(batch);
    let value: { marks: string; checksums: string[] | null } | null = null;
    if (where) {
      const buf = Buffer.alloc(where.length);
      await file.read(buf, 0, where.length, where.offset);
      value = JSON.parse(buf.toString("utf8"));
    }
    cached = { batch, value };
    return value;
  };
}
