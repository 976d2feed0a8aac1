/**
 * What one dispatch command sends, from where: WRITE's content stage from the run's TOC source (the crawl,
 * written to the TOC files as it goes), WRITE's directory stage from the directories' file, VALIDATE from
 * both files but for the entries that failed or were skipped in WRITE.
 */
import type { TocEntry } from "../core/messages.ts";
import type { MessageQueue } from "../core/ports.ts";
import type { CrawlItem } from "../toc/crawl.ts";
import { defaultLimits } from "../toc/toc-batcher.ts";
import { readTocFile, TocFileWriter } from "../toc/toc-file.ts";
import { dispatchStage } from "./dispatcher.ts";
import type { MachineEvent } from "./phase-machine.ts";

/** A partial batch leaves after this long, so that workers start while the crawl still runs. */
const DEFAULT_LINGER_MS = 200;

export interface PhaseDispatchOptions {
  readonly runId: string;
  readonly queue: MessageQueue;
  readonly batchEntries: number;
  readonly batchBytes: number;
  readonly lingerMs?: number | undefined;
  readonly emit: (e: MachineEvent) => void;
  readonly now: () => number;
  /** How long a send outlasts an outage before the stage fails. */
  readonly retryForMs: number;
  /** Makes every batch number below `end` durable before it is used (see run-record.ts). */
  readonly reserve: (end: number) => Promise<void>;
  /** The run's TOC files (core/run-paths.ts). */
  readonly files: { readonly toc: string; readonly dirs: string };
  /** The run's TOC source: the crawl, a manifest or a bucket's listing (toc/toc-source.ts). */
  readonly source: (signal: AbortSignal) => AsyncIterable<CrawlItem>;
}

export interface PhaseStage {
  readonly phase: "WRITE" | "VALIDATE";
  readonly stage: "content" | "dirs";
  readonly firstBatch: number;
  /** VALIDATE: the paths that failed or were skipped in WRITE, not checked. */
  readonly excluded: ReadonlySet<string>;
}

export async function dispatchPhase(
  o: PhaseDispatchOptions,
  d: PhaseStage,
  signal: AbortSignal,
): Promise<void> {
  const common = {
    runId: o.runId,
    phase: d.phase,
    stage: d.stage,
    firstBatch: d.firstBatch,
    queue: o.queue,
    limits: defaultLimits(o.batchEntries, o.batchBytes),
    lingerMs: o.lingerMs ?? DEFAULT_LINGER_MS,
    emit: o.emit,
    now: o.now,
    signal,
    retryForMs: o.retryForMs,
    reserve: o.reserve,
  };
  if (d.phase === "WRITE" && d.stage === "content") {
    const toc = new TocFileWriter(o.files.toc);
    const dirs = new TocFileWriter(o.files.dirs);
    try {
      await dispatchStage({
        ...common,
        entries: crawlInto(o.source(signal), toc, dirs, o.emit, o.now),
        dirs: () => dirs.count,
      });
    } finally {
      await Promise.all([toc.close(), dirs.close()]);
    }
  } else if (d.phase === "WRITE") {
    await dispatchStage({ ...common, entries: readTocFile(o.files.dirs) });
  } else {
    // VALIDATE: every entry of the TOC files but those that failed or were skipped in WRITE. (Crawl issues
    // never reached the TOC files; a directory that could not be listed was itself written.)
    await dispatchStage({
      ...common,
      entries: without(concat(readTocFile(o.files.toc), readTocFile(o.files.dirs)), d.excluded),
    });
  }
}

/** Passes crawl entries on (directories go to their own file for the last WRITE stage), issues to the machine. */
async function* crawlInto(
  items: AsyncIterable<CrawlItem>,
  toc: TocFileWriter,
  dirs: TocFileWriter,
  emit: (e: MachineEvent) => void,
  now: () => number,
): AsyncGenerator<TocEntry> {
  for await (const item of items) {
    if (item.type === "issue") {
      emit({
        type: "crawl-issue",
        at: now(),
        issue: item.issue,
        outcome: item.outcome,
        isEntry: item.isEntry,
      });
    } else if (item.entry.kind === "dir") {
      await dirs.write(item.entry);
    } else {
      await toc.write(item.entry);
      yield item.entry;
    }
  }
}

async function* concat<T>(...sources: AsyncIterable<T>[]): AsyncGenerator<T> {
  for (const s of sources) yield* s;
}

async function* without(
  entries: AsyncIterable<TocEntry>,
  excluded: ReadonlySet<string>,
): AsyncGenerator<TocEntry> {
  for await (const e of entries) if (!excluded.has(e.path)) yield e;
}
