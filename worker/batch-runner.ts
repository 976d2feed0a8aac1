/**
 * Works one TOC batch and returns its result. Never throws: an entry whose work fails unexpectedly is failed
 * with the error as its reason, and so is every entry left undone when the batch as a whole fails (e.g. the
 * rsync copier), so that the batch is reported like any other and its message deleted.
 */
import { describe } from "../core/errors.ts";
import type { Limiter } from "../core/limiter.ts";
import {
  type BatchResult,
  ENTRY_MARKS,
  entryFromWire,
  type PathIssue,
  type TocBatchMessage,
  type WorkPhase,
} from "../core/messages.ts";
import { type EntryOutcome, failed, type Target } from "./targets/target.ts";
import type { Yas3fsNotifier } from "./yas3fs-notifier.ts";

export interface BatchRunnerOptions {
  readonly target: Target;
  readonly limiter: Limiter;
  readonly notifier?: Yas3fsNotifier | undefined;
}

const MAX_REASON = 300;

/** The batch's result, or null when `signal` aborted the work (the batch is then given up, not reported). */
export async function runBatch(
  msg: TocBatchMessage,
  receiveCount: number,
  o: BatchRunnerOptions,
  signal: AbortSignal,
): Promise<BatchResult | null> {
  const entries = msg.entries.map(entryFromWire);
  const outcomes: (EntryOutcome | undefined)[] = new Array(entries.length);
  const target = o.target;
  try {
    const writeBatch = target.writeBatch;
    if (msg.phase === "WRITE" && writeBatch) {
      const all = await o.limiter.run(() => writeBatch(entries, msg.stage, signal));
      all.forEach((x, i) => {
        outcomes[i] = x;
      });
    } else {
      await Promise.all(
        entries.map(async (e, i) => {
          try {
            outcomes[i] = await o.limiter.run(async () => {
              if (signal.aborted) return failed("not worked: the work was given up");
              return msg.phase === "WRITE" ? target.write(e, msg.stage, signal) : target.check(e, signal);
            });
          } catch (err) {
            outcomes[i] = failed(`unexpected error: ${describe(err)}`);
          }
        }),
      );
    }
  } catch (err) {
    const reason = `batch ${msg.batch} failed unexpectedly: ${describe(err)}`;
    for (let i = 0; i < entries.length; i++) outcomes[i] ??= failed(reason);
  }
  if (signal.aborted) return null;
  const result = toResult(
    msg.batch,
    msg.phase,
    receiveCount,
    entries.map((e) => e.path),
    outcomes.map((x) => x ?? failed("not worked (internal error)")),
  );
  if (msg.phase === "WRITE" && result.ok > 0) {
    o.notifier?.touched(entries.filter((_, i) => outcomes[i]?.status === "ok").map((e) => e.path));
  }
  return result;
}

export function toResult(
  batch: number,
  phase: WorkPhase,
  receiveCount: number,
  paths: readonly string[],
  outcomes: readonly EntryOutcome[],
): BatchResult {
  const r = { batch, phase, ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0, receiveCount };
  const errors: PathIssue[] = [];
  const skips: PathIssue[] = [];
  let marks = "";
  outcomes.forEach((o, i) => {
    r[o.status]++;
    r.bytes += o.status === "ok" ? o.bytes : 0;
    marks += ENTRY_MARKS[o.status];
    const issue = { path: paths[i] ?? "", reason: (o.reason ?? "").slice(0, MAX_REASON) };
    if (o.status === "failed") errors.push(issue);
    if (o.status === "skipped") skips.push(issue);
  });
  // What the manifest needs per entry beyond the counts: which were written and which found unchanged (WRITE),
  // and the checksums the target knows.
  const perEntry: Pick<BatchResult, "marks" | "checksums"> = phase === "WRITE" ? { marks } : {};
  if (phase === "WRITE" && outcomes.some((o) => o.checksum !== undefined)) {
    return { ...r, errors, skips, ...perEntry, checksums: outcomes.map((o) => o.checksum ?? "") };
  }
  return { ...r, errors, skips, ...perEntry };
}
