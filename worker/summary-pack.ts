/**
 * Results into SUMMARY messages that each fit one SQS message *as encoded* (every character past ASCII
 * travels as a six-byte `\uXXXX`, so a name of non-ASCII letters weighs six times its length). A result too
 * big for one message is split into parts: each part carries the batch's full counts and a share of its
 * errors and skips, and the master counts the batch once it holds every part.
 */
import { type BatchResult, encodeUnchecked, MAX_MESSAGE_BYTES, type MessageBody } from "../core/messages.ts";

export type SummaryBody = Extract<MessageBody, { type: "SUMMARY" }>;
export type SummaryHead = Omit<SummaryBody, "batches">;

export interface PackedSummary {
  readonly body: string;
  /** Indexes (into the packed results) of the results whose last part is in this message. */
  readonly completes: readonly number[];
}

/** Bytes `value` takes inside an encoded body. */
export function encodedLength(value: unknown): number {
  const json = JSON.stringify(value);
  let n = json.length;
  for (let i = 0; i < json.length; i++) if (json.charCodeAt(i) >= 0x7f) n += 5;
  return n;
}

/** Packs results, in order, into as few SUMMARY bodies as fit; at least one body (a heartbeat when empty). */
export function packSummaries(
  run: string,
  head: SummaryHead,
  results: readonly BatchResult[],
  limit: number = MAX_MESSAGE_BYTES,
): PackedSummary[] {
  const empty = encodeUnchecked(run, { ...head, batches: [] }).length;
  const pieces = results.flatMap((r, index) =>
    splitResult(r, limit - empty).map((piece, k, all) => ({ piece, index, last: k === all.length - 1 })),
  );
  const out: PackedSummary[] = [];
  let cur: { piece: BatchResult; index: number; last: boolean }[] = [];
  let bytes = empty;
  const flush = () => {
    const body = encodeUnchecked(run, { ...head, batches: cur.map((p) => p.piece) });
    if (body.length > limit) throw new Error(`packed a SUMMARY of ${body.length} bytes, over ${limit}`);
    out.push({ body, completes: cur.filter((p) => p.last).map((p) => p.index) });
    cur = [];
    bytes = empty;
  };
  for (const p of pieces) {
    const n = encodedLength(p.piece);
    if (cur.length > 0 && bytes + 1 + n > limit) flush();
    bytes += n + (cur.length > 0 ? 1 : 0);
    cur.push(p);
  }
  if (cur.length > 0 || out.length === 0) flush();
  return out;
}

/**
 * The result whole when it fits in `room` bytes of a message's batches, else its parts, each within `room`.
 * One issue always fits: a path is at most 4,096 bytes (six times that escaped) and a reason 300 characters.
 */
export function splitResult(r: BatchResult, room: number): BatchResult[] {
  if (encodedLength(r) <= room) return [r];
  const issues = [
    ...r.errors.map((i) => ({ list: "errors" as const, i })),
    ...r.skips.map((i) => ({ list: "skips" as const, i })),
  ];
  // The part's own fields, with the widest part numbers it can get.
  const bare = encodedLength({
    ...r,
    errors: [],
    skips: [],
    part: { index: issues.length, of: issues.length },
  });
  const groups: (typeof issues)[] = [];
  let cur: typeof issues = [];
  let bytes = bare;
  for (const x of issues) {
    const n = encodedLength(x.i) + 1;
    if (cur.length > 0 && bytes + n > room) {
      groups.push(cur);
      cur = [];
      bytes = bare;
    }
    cur.push(x);
    bytes += n;
  }
  groups.push(cur);
  return groups.map((g, index) => ({
    ...r,
    errors: g.filter((x) => x.list === "errors").map((x) => x.i),
    skips: g.filter((x) => x.list === "skips").map((x) => x.i),
    part: { index, of: groups.length },
  }));
}
