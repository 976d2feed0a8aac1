/**
 * The verification manifest (`--manifest-out`): one line per TOC entry with its final outcome, which is known
 * only once VALIDATE has checked it. Its memory stays flat however large the TOC:
 *
 * - while the run goes, `observe` appends, per batch issued, each entry's place in its stage's stream (the
 *   dispatcher's `places`) to a file of the run's folder, and each counted WRITE result's per-entry letters
 *   and checksums to another, with only that line's offset kept;
 * - at the end, `write` reads the TOC files once, in order, and the places files beside them (batches mix
 *   entries only within the batcher's bounded window), joining each entry with its WRITE line (one batch's
 *   letters read at a time), whether its batches were counted, and the report's error or skip for its path.
 *
 * The lines are the report's entries: the content entries issued, the directories once the crawl ended, and
 * the entries the crawl could not read (which never reached the TOC files).
 */
import { once } from "node:events";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import type { EntryMark, TocEntry } from "../core/messages.ts";
import type { ObjectStore } from "../core/object-store.ts";
import { readTocFile } from "../toc/toc-file.ts";
import { encodeManifestLine, type ManifestLine, outcomeOf } from "./manifest-line.ts";
import { openManifestSink } from "./manifest-sink.ts";
import { writeFailures } from "./phase-results.ts";
import type { MachineEvent, MachineState } from "./phase-types.ts";

/** The per-entry letters and checksums of counted WRITE results, one JSON line per batch. */
export const WRITE_MARKS_FILE = "write-marks.jsonl";

/** Per stage, one line per batch issued: its number and each entry's place in the stage's stream. */
const placesFile = (stage: string) => `batch-places-${stage.replace("/", "-")}.jsonl`;

export interface ManifestOutcome {
  readonly destination: string;
  readonly lines: number;
}

export class ManifestRecorder {
  /** Each stage's file of batch places, written as batches are issued. */
  private readonly stages = new Map<string, WriteStream>();
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
    this.marks = this.keep(createWriteStream(path.join(runDir, WRITE_MARKS_FILE), { flags: "w" }));
  }

  /** A file of the run's folder written beside the loop: its first failure is kept, and thrown by `write`. */
  private keep(stream: WriteStream): WriteStream {
    stream.on("error", (err) => {
      this.marksError ??= err;
    });
    return stream;
  }

  /** Takes one step of the machine: the event and the states before and after it. */
  observe(prev: MachineState, e: MachineEvent, next: MachineState): void {
    const d = next.dispatch;
    if (d?.phase === "VALIDATE" && prev.dispatch?.phase !== "VALIDATE")
      this.validateExcluded = writeFailures(next);
    switch (e.type) {
      case "batches-issued": {
        if (!d || !e.places) return;
        const key = `${d.phase}/${d.stage}`;
        let stream = this.stages.get(key);
        if (!stream) {
          stream = this.keep(createWriteStream(path.join(this.runDir, placesFile(key)), { flags: "w" }));
          this.stages.set(key, stream);
        }
        let text = "";
        e.places.forEach((places, k) => {
          text += `${JSON.stringify([e.first + k, places])}\n`;
        });
        stream.write(text);
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
    for (const stream of [this.marks, ...this.stages.values()]) {
      if (stream.closed) continue;
      stream.end();
      await once(stream, "close");
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
      const cursorOf = (stage: string) =>
        placeReader(this.stages.has(stage) ? path.join(this.runDir, placesFile(stage)) : null);
      const validate = cursorOf("VALIDATE/content");
      const excluded = this.validateExcluded;
      const pass = async (file: string, write: Cursor, all: boolean) => {
        for await (const entry of readTocFile(file)) {
          const writtenIn = await write.next();
          if (writtenIn === null && !all) continue; // never issued (the run stopped): not an entry of the run
          const checkedIn = excluded && !excluded.has(entry.path) ? await validate.next() : null;
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
      await pass(this.files.toc, cursorOf("WRITE/content"), false);
      if (this.crawlDone) await pass(this.files.dirs, cursorOf("WRITE/dirs"), true);
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
  /** The next entry's batch and its place in it, or null when no batch of the stage held it. */
  next(): Promise<{ batch: number; index: number } | null>;
}

/**
 * Walks a stage's entries in stream order over its batch places file, read in issue order: the batches mix
 * entries only within the batcher's window, so the places read ahead and not yet asked for stay few.
 */
function placeReader(file: string | null): Cursor {
  const ahead = new Map<number, { batch: number; index: number }>();
  const lines = file
    ? createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })[
        Symbol.asyncIterator
      ]()
    : null;
  let done = lines === null;
  let n = 0;
  return {
    async next() {
      const want = n++;
      while (!ahead.has(want) && !done && lines) {
        const r = await lines.next();
        if (r.done) {
          done = true;
          break;
        }
        if (r.value === "") continue;
        const [batch, places] = JSON.parse(r.value) as [number, number[]];
        for (const [index, place] of places.entries()) ahead.set(place, { batch, index });
      }
      const got = ahead.get(want) ?? null;
      ahead.delete(want);
      return got;
    },
  };
}

/** WRITE lines held at once: the batches of the batcher's window that the pass walks through together. */
const MARKS_CACHED = 256;

/** Reads a batch's WRITE line, keeping the latest MARKS_CACHED (the pass walks a window of batches at once). */
function marksReader(
  file: fs.FileHandle,
  at: ReadonlyMap<number, { offset: number; length: number }>,
): (batch: number) => Promise<{ marks: string; checksums: string[] | null } | null> {
  const cached = new Map<number, { marks: string; checksums: string[] | null } | null>();
  return async (batch) => {
    if (cached.has(batch)) return cached.get(batch) ?? null;
    const where = at.get(batch);
    let value: { marks: string; checksums: string[] | null } | null = null;
    if (where) {
      const buf = Buffer.alloc(where.length);
      await file.read(buf, 0, where.length, where.offset);
      value = JSON.parse(buf.toString("utf8"));
    }
    cached.set(batch, value);
    if (cached.size > MARKS_CACHED) cached.delete(cached.keys().next().value as number);
    return value;
  };
}
