/**
 * The one codec for every message of a run: control messages (master → SNS topic → each worker's queue),
 * reports (worker → report queue → master) and TOC batches (master → TOC queue → workers).
 *
 * Every message is JSON with a `type` tag, the protocol version `v` and the `run` id. `decodeMessage` validates
 * the shape and never throws: an undecodable body is a typed `ProtocolError` that the caller counts and reports.
 */
import { z } from "zod";

export const PROTOCOL_VERSION = 1;

/** SQS and SNS refuse bodies over 256 KiB; we stay under it with room for SNS envelopes. */
export const MAX_MESSAGE_BYTES = 240 * 1024;

export const PHASES = ["INITIALIZING", "WRITE", "VALIDATE", "ERROR_REPORT", "SHUTDOWN"] as const;
export type Phase = (typeof PHASES)[number];

/** Work phases: the ones that send TOC batches. */
export type WorkPhase = "WRITE" | "VALIDATE";

/**
 * Within WRITE, files and symlinks go first, directories last: a directory's mode and mtime are set only
 * after every child has been written, so that writing a child cannot change them afterwards.
 */
export type Stage = "content" | "dirs";

export const ENTRY_KINDS = ["file", "dir", "symlink"] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

const kindCode = { file: "f", dir: "d", symlink: "l" } as const;
const codeKind = { f: "file", d: "dir", l: "symlink" } as const;

/** One TOC entry: a path relative to the source root, as the crawl saw it. */
export interface TocEntry {
  readonly path: string;
  readonly kind: EntryKind;
  readonly size: number;
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact; a double cannot hold it). */
  readonly mtimeNs: string;
  /**
   * Inode number as the crawl saw it (decimal: it may pass 2^53), so that a worker can tell that what it
   * opened is this entry and nothing put in its place. Absent for objects of a bucket.
   */
  readonly ino?: string | undefined;
  /**
   * Device number, only when it is not the source root's (a filesystem mounted inside the source): device
   * numbers differ from host to host, inode numbers of a shared filesystem do not.
   */
  readonly dev?: string | undefined;
}

/**
 * Compact wire form of an entry: `[path, kind code, size, mtimeNs]`, then, for entries of a directory source,
 * their identity as one string: `"INO"`, or `"INO:DEV"` off the root's device.
 */
const WireEntry = z.union([
  z.tuple([z.string(), z.enum(["f", "d", "l"]), z.number().int().nonnegative(), z.string()]),
  z.tuple([
    z.string(),
    z.enum(["f", "d", "l"]),
    z.number().int().nonnegative(),
    z.string(),
    z.string().regex(/^\d+(:\d+)?$/),
  ]),
]);
type WireEntry = z.infer<typeof WireEntry>;

export function entryToWire(e: TocEntry): WireEntry {
  if (e.ino === undefined) return [e.path, kindCode[e.kind], e.size, e.mtimeNs];
  return [e.path, kindCode[e.kind], e.size, e.mtimeNs, e.dev === undefined ? e.ino : `${e.ino}:${e.dev}`];
}
export function entryFromWire(w: WireEntry): TocEntry {
  const entry = { path: w[0], kind: codeKind[w[1]], size: w[2], mtimeNs: w[3] };
  const id = w[4];
  if (id === undefined) return entry;
  const colon = id.indexOf(":");
  return colon < 0 ? { ...entry, ino: id } : { ...entry, ino: id.slice(0, colon), dev: id.slice(colon + 1) };
}

const runId = z.string().min(1).max(64);
const workerId = z.string().min(1).max(80);
const phase = z.enum(PHASES);
const workPhase = z.enum(["WRITE", "VALIDATE"]);
const count = z.number().int().nonnegative();

/** Entries by outcome: written (or checked) ok, failed, skipped with a reason, or unchanged (already there). */
const Tally = z.object({ ok: count, failed: count, skipped: count, unchanged: count, bytes: count });
export type Tally = z.infer<typeof Tally>;
export const emptyTally = (): Tally => ({ ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0 });

const PathIssue = z.object({ path: z.string(), reason: z.string() });
export type PathIssue = z.infer<typeof PathIssue>;

/** The outcome of one TOC batch on one worker. */
const BatchResult = z.object({
  batch: count,
  phase: workPhase,
  ok: count,
  failed: count,
  skipped: count,
  /** Already in the target as in the source: not written again, counted but not listed. */
  unchanged: count,
  bytes: count,
  /** How often SQS had handed this batch out when this worker got it (more than 1: a redelivery). */
  receiveCount: count,
  errors: z.array(PathIssue),
  skips: z.array(PathIssue),
  /**
   * WRITE: what became of each entry, in the batch's order, one letter each (`ENTRY_MARKS`): the manifest tells
   * a written entry from one found unchanged by it. Absent from VALIDATE results (and from older workers).
   */
  marks: z
    .string()
    .regex(/^[wufs]*$/)
    .optional(),
  /**
   * The checksum the worker knows for each entry, in the batch's order (`crc32:BASE64`; "" when none), for the
   * manifest. Absent when no entry has one.
   */
  checksums: z.array(z.string().max(64)).optional(),
  /**
   * A result too big for one message travels in parts: every part carries the batch's full counts and a share
   * of its `errors` and `skips`. The master counts the batch once it holds every part from the same worker
   * and delivery (`receiveCount`). Absent: the whole result in one message.
   */
  part: z.object({ index: count, of: z.number().int().min(1) }).optional(),
});
export type BatchResult = z.infer<typeof BatchResult>;

/** The letters of `BatchResult.marks`: written, unchanged (already there), failed, skipped. */
export const ENTRY_MARKS = { ok: "w", unchanged: "u", failed: "f", skipped: "s" } as const;
export type EntryMark = (typeof ENTRY_MARKS)[keyof typeof ENTRY_MARKS];

const base = { v: z.literal(PROTOCOL_VERSION), run: runId };

/** Why a worker said STOPPED: the run was over, a signal stopped it, its master fell silent, or Spot took its instance. */
export const STOP_REASONS = ["run over", "signal", "master silent", "spot interruption"] as const;
export type StopReason = (typeof STOP_REASONS)[number];

const ModeMessage = z.object({
  ...base,
  type: z.literal("MODE"),
  phase,
  /** Workers the master has seen announce themselves; a worker re-announces until it is listed. */
  known: z.array(workerId),
  /**
   * Workers the master declared lost (and whose control queues it removed). A worker that finds itself here,
   * or finds its control queue gone, rejoins: a new queue and subscription, and INITIALIZED again.
   */
  lost: z.array(workerId).optional(),
  failfast: z.boolean(),
  sentAtMs: count,
});

const ShutdownMessage = z.object({ ...base, type: z.literal("SHUTDOWN"), reason: z.string() });

const WorkerStateMessage = z.object({
  ...base,
  type: z.literal("WORKER_STATE"),
  worker: workerId,
  state: z.enum(["INITIALIZED", "IDLE", "STOPPED"]),
  host: z.string(),
  pid: count,
  concurrency: count,
  /** The worker's own control queue and subscription, so the master can remove them if the worker dies. */
  controlQueueUrl: z.string(),
  subscriptionArn: z.string(),
  /**
   * With STOPPED: why the worker leaves. `spot interruption`: its instance got EC2's interruption notice, and
   * it drained (finished or put back what it held, reported, said goodbye); the master counts it drained.
   */
  reason: z.enum(STOP_REASONS).optional(),
  /** With STOPPED: a line for the report (what was finished, what was put back). */
  detail: z.string().max(1000).optional(),
});

const SummaryMessage = z.object({
  ...base,
  type: z.literal("SUMMARY"),
  worker: workerId,
  /** CURRENT: periodic, also the heartbeat. FINAL: the worker's totals when the master left that phase. */
  kind: z.enum(["CURRENT", "FINAL"]),
  phase,
  /** Cumulative per phase since the worker started. */
  totals: z.object({ WRITE: Tally, VALIDATE: Tally }),
  /** Batches finished since the previous summary; sent before their TOC messages are deleted. */
  batches: z.array(BatchResult),
  inFlight: count,
  rssBytes: count,
  /** SQS requests this worker has made (every queue, every kind), so the run can report its own cost. */
  sqsRequests: count,
  protocolErrors: count,
});

/**
 * The outcome of a worker's before-VALIDATE hook, sent once when it has run. A worker whose hook failed takes
 * no VALIDATE batch; the master reports the failure (exit code, last lines of output) and the run fails.
 */
const HookMessage = z.object({
  ...base,
  type: z.literal("HOOK"),
  worker: workerId,
  ok: z.boolean(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** The last lines of the hook's output (stdout and stderr), at most MAX_HOOK_OUTPUT characters. */
  outputTail: z.string().max(4096),
  durationMs: count,
});

export const MAX_HOOK_OUTPUT = 4096;

const ErrorReportMessage = z.object({
  ...base,
  type: z.literal("ERROR_REPORT"),
  worker: workerId,
  /** How many per-entry errors this worker has sent in SUMMARY messages: the master checks it holds as many. */
  errorsSent: count,
  protocolErrors: count,
  notes: z.array(z.string()),
});

const TocBatchMessage = z.object({
  ...base,
  type: z.literal("TOC_BATCH"),
  phase: workPhase,
  stage: z.enum(["content", "dirs"]),
  batch: count,
  entries: z.array(WireEntry).min(1),
});

const Message = z.discriminatedUnion("type", [
  ModeMessage,
  ShutdownMessage,
  WorkerStateMessage,
  SummaryMessage,
  HookMessage,
  ErrorReportMessage,
  TocBatchMessage,
]);

export type Message = z.infer<typeof Message>;
export type ModeMessage = z.infer<typeof ModeMessage>;
export type ShutdownMessage = z.infer<typeof ShutdownMessage>;
export type WorkerStateMessage = z.infer<typeof WorkerStateMessage>;
export type SummaryMessage = z.infer<typeof SummaryMessage>;
export type HookMessage = z.infer<typeof HookMessage>;
export type ErrorReportMessage = z.infer<typeof ErrorReportMessage>;
export type TocBatchMessage = z.infer<typeof TocBatchMessage>;
export type MessageType = Message["type"];

/** Distributive Omit, so that each member of the union keeps its own fields. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type MessageBody = DistributiveOmit<Message, "v" | "run">;

export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly kind: "malformed-json" | "wrong-shape" | "foreign-run" | "unexpected-type" | "too-large",
    message: string,
  ) {
    super(message);
  }
}

export type Decoded = { ok: true; message: Message } | { ok: false; error: ProtocolError };

/** Encodes a message for the given run; throws if it would not fit in one SQS/SNS message. */
export function encodeMessage(run: string, body: MessageBody): string {
  const text = encodeUnchecked(run, body);
  const bytes = text.length; // ASCII: one byte per character
  if (bytes > MAX_MESSAGE_BYTES) {
    throw new ProtocolError("too-large", `${body.type} message is ${bytes} bytes, over ${MAX_MESSAGE_BYTES}`);
  }
  return text;
}

/**
 * Decodes and validates a body. `expectRun` (when known) refuses messages of another run; `accept` lists the
 * types this receiver handles (a worker never takes a SUMMARY, the master never takes a TOC_BATCH).
 */
export function decodeMessage(
  body: string,
  opts: { expectRun?: string | undefined; accept: readonly MessageType[] },
): Decoded {
  if (Buffer.byteLength(body) > MAX_MESSAGE_BYTES * 2) {
    return {
      ok: false,
      error: new ProtocolError("too-large", `message of ${Buffer.byteLength(body)} bytes`),
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, error: new ProtocolError("malformed-json", `not JSON: ${preview(body)}`) };
  }
  const parsed = Message.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join(".") || "(message)";
    return {
      ok: false,
      error: new ProtocolError("wrong-shape", `${where}: ${issue?.message ?? "invalid"} in ${preview(body)}`),
    };
  }
  const message = parsed.data;
  if (opts.expectRun !== undefined && message.run !== opts.expectRun) {
    return {
      ok: false,
      error: new ProtocolError(
        "foreign-run",
        `${message.type} of run ${message.run}, expected ${opts.expectRun}`,
      ),
    };
  }
  if (!opts.accept.includes(message.type)) {
    return { ok: false, error: new ProtocolError("unexpected-type", `${message.type} is not accepted here`) };
  }
  return { ok: true, message };
}

/**
 * The body as it travels, without the size check: measure with it (`.length` is its size in bytes) when a
 * message has to be split to fit.
 */
export function encodeUnchecked(run: string, body: MessageBody): string {
  // ASCII only: SQS refuses some characters (and emulators more), and names may contain anything.
  return JSON.stringify({ v: PROTOCOL_VERSION, run, ...body }).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function preview(body: string): string {
  const s = body.length > 80 ? `${body.slice(0, 80)}…` : body;
  return JSON.stringify(s);
}

/** Bytes one entry adds to a TOC_BATCH body (its JSON plus the separating comma). */
export function wireEntryBytes(e: TocEntry): number {
  const json = JSON.stringify(entryToWire(e));
  let extra = 0;
  for (let i = 0; i < json.length; i++) if (json.charCodeAt(i) > 0x7e) extra += 5; // escaped as \uXXXX
  return json.length + extra + 1;
}
