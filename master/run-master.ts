/**
 * The master's run loop: feeds events (worker reports, dispatcher progress, ticks, signals) to the phase
 * machine one at a time and performs the commands it returns through the ports. Reads top to bottom:
 * start the sources of events, loop until the machine says finish, stop the sources, build the report.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { describe, isAbort } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { decodeMessage, encodeMessage, type TocEntry } from "../core/messages.ts";
import type { ObjectStore } from "../core/object-store.ts";
import type { MessageQueue, Subscriptions, Topic } from "../core/ports.ts";
import { OutageClock, pause } from "../core/retry.ts";
import type { Shutdown } from "../core/shutdown.ts";
import type { CrawlItem } from "../toc/crawl.ts";
import { defaultLimits } from "../toc/toc-batcher.ts";
import { readTocFile, TocFileWriter } from "../toc/toc-file.ts";
import { checkRunSource, runToc, type TocSourceOptions } from "../toc/toc-source.ts";
import { dispatchStage } from "./dispatcher.ts";
import {
  type BroadcastBody,
  type Command,
  initialState,
  type MachineEvent,
  type MachineSettings,
  type MachineState,
  type Resumption,
  start,
  step,
} from "./phase-machine.ts";
import { buildReport, type RunReport } from "./report.ts";
import { type RunRecord, readRunRecord, reservationFor, writeRunRecord } from "./run-record.ts";

export interface MasterPorts {
  /** The source bucket, when the source is s3:// (a bucket mirror): the TOC is its listing. */
  readonly sourceStore?: ObjectStore | undefined;
  readonly topic: Topic;
  readonly tocQueue: MessageQueue;
  readonly reportQueue: MessageQueue;
  readonly deadLetterQueue?: MessageQueue | undefined;
  /**
   * Without `deadLetterQueue`: finds the TOC queue's dead-letter queue (from its RedrivePolicy), or null when it
   * has none. The master always reads the dead-letter queue when there is one.
   */
  readonly findDeadLetterQueue?: ((signal?: AbortSignal) => Promise<MessageQueue | null>) | undefined;
  readonly subscriptions: Subscriptions;
}

export interface MasterOptions {
  readonly runId: string;
  readonly source: string;
  /** Shown in the report only: the workers write to their own target. */
  readonly target: string;
  readonly stateDir: string;
  readonly settings: MachineSettings;
  /** Resume this run after an earlier master of it stopped (see run-record.ts). */
  readonly resume?: boolean;
  readonly batchEntries: number;
  readonly batchBytes: number;
  readonly lingerMs?: number;
  readonly tickMs?: number;
  readonly progressMs: number;
  /** While SQS cannot be reached, keep retrying this long; then the run fails. */
  readonly awsDownTimeoutMs?: number;
  readonly log: Logger;
  readonly shutdown: Shutdown;
  /** Aborted (with a reason) when the run must fail from outside, e.g. every local worker process died. */
  readonly fatal?: AbortSignal;
  /** Called with the live figures every `progressMs`. */
  readonly onProgress?: (p: Progress) => void;
  /** A manifest instead of the crawl, and the TOC filters (a directory source only). */
  readonly toc?: TocSourceOptions | undefined;
  readonly now?: () => number;
}

export interface Progress {
  readonly phase: string;
  readonly stage: string | null;
  readonly entriesSent: number;
  readonly batchesSent: number;
  readonly batchesDone: number;
  readonly written: number;
  readonly validated: number;
  readonly failed: number;
  readonly bytes: number;
  readonly filesPerSec: number;
  readonly mbPerSec: number;
  readonly workersAlive: number;
  readonly workersLost: number;
}

export async function runMaster(ports: MasterPorts, o: MasterOptions): Promise<RunReport> {
  const now = o.now ?? Date.now;
  const log = o.log;
  await checkRunSource(o.source, ports.sourceStore);
  const runDir = path.join(o.stateDir, "runs", o.runId);
  await fs.mkdir(runDir, { recursive: true });
  const dlq = await findDeadLetterQueue(ports);
  const { record, resumed } = await beginAttempt(runDir, o, ports, now());
  const tocFile = path.join(runDir, "toc.jsonl");
  const dirsFile = path.join(runDir, "dirs.jsonl");

  // ---- the event queue every source pushes into ----
  const events: MachineEvent[] = [];
  let wake: (() => void) | null = null;
  const emit = (e: MachineEvent) => {
    events.push(e);
    wake?.();
  };
  const nextEvent = async (): Promise<MachineEvent> => {
    while (events.length === 0) await new Promise<void>((r) => (wake = r));
    wake = null;
    return events.shift() as MachineEvent;
  };

  const done = new AbortController();
  const { shutdown } = o;
  shutdown.stop.addEventListener("abort", () => emit({ type: "interrupt", at: now() }), { once: true });
  shutdown.abort.addEventListener("abort", () => emit({ type: "interrupt", at: now() }), { once: true });
  o.fatal?.addEventListener(
    "abort",
    () => emit({ type: "fatal", at: now(), reason: describe(o.fatal?.reason) }),
    {
      once: true,
    },
  );

  let peakRss = process.memoryUsage.rss();
  const background: Promise<unknown>[] = [];
  const awsDownMs = o.awsDownTimeoutMs ?? 300_000;
  if (dlq.note) emit({ type: "note", at: now(), ...dlq.note });
  background.push(receiveReports(ports.reportQueue, o.runId, emit, now, log, done.signal, awsDownMs));
  const deadLetterQueue = dlq.queue;
  if (deadLetterQueue)
    background.push(drainDeadLetters(deadLetterQueue, o.runId, emit, now, log, done.signal));
  const ticker = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    emit({ type: "tick", at: now() });
  }, o.tickMs ?? 250);

  let state: MachineState = initialState(o.runId, o.settings, now(), resumed);
  let runRecord = record;
  // Called by the dispatcher (one stage at a time, one send at a time) before it uses numbers below `end`.
  const reserve = async (end: number) => {
    const highWater = reservationFor(runRecord.batchHighWater, end);
    if (highWater === null) return;
    runRecord = { ...runRecord, batchHighWater: highWater };
    await writeRunRecord(runDir, runRecord);
  };
  const current: { dispatch: AbortController | null } = { dispatch: null };
  const progress = progressMeter(o.progressMs, now, (p) => o.onProgress?.(p));

  /**
   * A command's AWS call may take 10 s at most (with its retries): an outage must not hold the loop. Not tied
   * to the abort signal: after a second Ctrl-C the queues must still be removed.
   */
  const bounded = () => AbortSignal.timeout(10_000);
  /**
   * Broadcasts go out one at a time, beside the loop (a slow or failing publish must not hold it); while one is
   * out, only the newest waiting one is kept: the beacon repeats the current mode anyway.
   */
  const broadcaster = (() => {
    let next: BroadcastBody | null = null;
    let running: Promise<void> | null = null;
    const drain = async () => {
      while (next) {
        const message = next;
        next = null;
        const body = message.type === "MODE" ? { ...message, sentAtMs: now() } : message;
        try {
          await ports.topic.publish(encodeMessage(o.runId, body), bounded());
        } catch (err) {
          // The beacon repeats the mode, so a lost broadcast costs a few seconds, not the run.
          log.warn(`broadcast of ${message.type} failed: ${describe(err)}`);
        }
      }
      running = null;
    };
    return {
      send(message: BroadcastBody) {
        next = message;
        running ??= drain();
      },
      settled: () => running ?? Promise.resolve(),
    };
  })();
  const perform = async (c: Command): Promise<void> => {
    switch (c.type) {
      case "broadcast":
        broadcaster.send(c.message);
        return;
      case "dispatch": {
        current.dispatch?.abort();
        const ctl = new AbortController();
        current.dispatch = ctl;
        const task = runDispatch(c.phase, c.stage, c.firstBatch, ctl.signal).catch((err) => {
          if (ctl.signal.aborted || isAbort(err)) return;
          emit({ type: "dispatch-failed", at: now(), reason: describe(err) });
        });
        background.push(task);
        return;
      }
      case "stop-dispatch":
        current.dispatch?.abort();
        return;
      case "purge-toc":
        try {
          await ports.tocQueue.purge(bounded());
        } catch (err) {
          log.warn(`could not purge the TOC queue: ${describe(err)}`);
        }
        return;
      case "remove-worker-queue":
        try {
          await ports.subscriptions.close(c.queueUrl, c.subscriptionArn, bounded());
        } catch (err) {
          log.warn(`could not remove the control queue of ${c.worker}: ${describe(err)}`);
        }
        return;
      case "log":
        log.log(c.level, c.message);
        return;
      case "finish":
        return;
      default: {
        const never: never = c;
        throw new Error(`unhandled command ${JSON.stringify(never)}`);
      }
    }
  };

  const runDispatch = async (
    phase: "WRITE" | "VALIDATE",
    stage: "content" | "dirs",
    firstBatch: number,
    signal: AbortSignal,
  ) => {
    const limits = defaultLimits(o.batchEntries, o.batchBytes);
    const common = {
      runId: o.runId,
      phase,
      stage,
      firstBatch,
      queue: ports.tocQueue,
      limits,
      emit,
      now,
      signal,
      retryForMs: awsDownMs,
      reserve,
    };
    const lingerMs = o.lingerMs ?? 200;
    if (phase === "WRITE" && stage === "content") {
      const toc = new TocFileWriter(tocFile);
      const dirs = new TocFileWriter(dirsFile);
      try {
        await dispatchStage({
          ...common,
          lingerMs,
          entries: crawlInto(runToc(o.source, ports.sourceStore, o.toc, signal), toc, dirs, emit, now),
          dirs: () => dirs.count,
        });
      } finally {
        await Promise.all([toc.close(), dirs.close()]);
      }
    } else if (phase === "WRITE") {
      await dispatchStage({ ...common, lingerMs, entries: readTocFile(dirsFile) });
    } else {
      // VALIDATE: every entry of the TOC files but those that failed or were skipped in WRITE. (Crawl issues
      // never reached the TOC files; a directory that could not be listed was itself written.)
      const excluded = new Set(
        [...state.errors, ...state.skipped].filter((e) => e.phase === "WRITE").map((e) => e.path),
      );
      await dispatchStage({
        ...common,
        lingerMs,
        entries: without(concat(readTocFile(tocFile), readTocFile(dirsFile)), excluded),
      });
    }
  };

  const first = start(state);
  state = first.state;
  for (const c of first.commands) await perform(c);
  log.info(`run ${o.runId}: waiting for ${o.settings.expectedWorkers} worker(s)`, { runId: o.runId });

  while (!state.finished) {
    const event = await nextEvent();
    const r = step(state, event);
    state = r.state;
    for (const c of r.commands) await perform(c);
    progress.update(state);
  }

  clearInterval(ticker);
  current.dispatch?.abort();
  await broadcaster.settled(); // the last SHUTDOWN goes out before we stop
  done.abort();
  await Promise.allSettled(background);
  const attempts = [...runRecord.attempts];
  const last = attempts.pop();
  attempts.push({
    startedAtMs: last?.startedAtMs ?? now(),
    endedAtMs: now(),
    outcome: state.outcome ?? "failed",
  });
  await writeRunRecord(runDir, { ...runRecord, attempts }).catch((err) =>
    log.warn(`could not update the run record: ${describe(err)}`),
  );
  const sqsRequests = ports.tocQueue.requests + ports.reportQueue.requests + (deadLetterQueue?.requests ?? 0);
  return buildReport(state, {
    source: o.source,
    target: o.target,
    endedAtMs: now(),
    sqsRequests,
    masterPeakRssBytes: Math.max(peakRss, process.memoryUsage.rss()),
  });
}

/**
 * The master's long polls. They stay far below any request timeout the SDK clients may carry (a long poll that
 * outlived its request timeout would be cut and retried for ever), and short enough that a stop is prompt.
 */
const REPORT_POLL_SEC = 2;
const DEAD_LETTER_POLL_SEC = 5;
/** The pause after a failed poll: the report queue's bounded by `awsDownTimeoutMs`, the dead letters' by the run. */
const REPORT_RETRY_MS = 1_000;
const DEAD_LETTER_RETRY_MS = 2_000;

/** Long-polls the report queue and turns each message into an event; deletes what it has taken. */
async function receiveReports(
  queue: MessageQueue,
  runId: string,
  emit: (e: MachineEvent) => void,
  now: () => number,
  log: Logger,
  signal: AbortSignal,
  awsDownMs: number,
): Promise<void> {
  const outage = new OutageClock(awsDownMs, now);
  while (!signal.aborted) {
    try {
      const messages = await queue.receive({ max: 10, waitSec: REPORT_POLL_SEC }, signal);
      const downMs = outage.recovered();
      if (downMs !== null) log.info(`the report queue answers again after ${Math.round(downMs / 1000)} s`);
      for (const m of messages) {
        const d = decodeMessage(m.body, {
          expectRun: runId,
          accept: ["WORKER_STATE", "SUMMARY", "HOOK", "ERROR_REPORT"],
        });
        const at = now();
        if (!d.ok) emit({ type: "protocol-error", at, reason: d.error.message });
        else if (d.message.type === "WORKER_STATE") emit({ type: "worker-state", at, message: d.message });
        else if (d.message.type === "SUMMARY") emit({ type: "summary", at, message: d.message });
        else if (d.message.type === "HOOK") emit({ type: "hook", at, message: d.message });
        else if (d.message.type === "ERROR_REPORT") {
          emit({
            type: "error-report",
            at,
            worker: d.message.worker,
            errorsSent: d.message.errorsSent,
            protocolErrors: d.message.protocolErrors,
            notes: d.message.notes,
          });
        }
      }
      if (messages.length > 0) await queue.delete(messages.map((m) => m.receipt));
    } catch (err) {
      if (signal.aborted) return;
      if (outage.failed()) {
        emit({
          type: "fatal",
          at: now(),
          reason: `SQS unreachable for ${Math.round(awsDownMs / 1000)} s: ${describe(err)}`,
        });
        return;
      }
      log.warn(`receiving reports failed, retrying: ${describe(err)}`);
      await pause(REPORT_RETRY_MS, signal);
    }
  }
}

/**
 * The dead-letter queue named by the settings, or else the one the TOC queue's RedrivePolicy names. Without
 * either, a batch that never gets a result ends the run only at the stall limit: the report says so.
 */
async function findDeadLetterQueue(ports: MasterPorts): Promise<{
  queue: MessageQueue | null;
  note: { level: "info" | "warn"; message: string } | null;
}> {
  if (ports.deadLetterQueue) return { queue: ports.deadLetterQueue, note: null };
  if (!ports.findDeadLetterQueue) return { queue: null, note: null };
  let found: MessageQueue | null;
  try {
    found = await ports.findDeadLetterQueue(AbortSignal.timeout(30_000));
  } catch (err) {
    throw new Error(
      `the TOC queue's dead-letter queue cannot be found from its RedrivePolicy (${describe(err)}): give --dead-letter-queue-url`,
      { cause: err },
    );
  }
  const note = found
    ? {
        level: "info" as const,
        message: `reading the dead-letter queue ${found.url} (from the TOC queue's RedrivePolicy)`,
      }
    : {
        level: "warn" as const,
        message:
          "the TOC queue has no dead-letter queue (no RedrivePolicy): a batch that never gets a result ends the run only at the stall limit",
      };
  return { queue: found, note };
}

/**
 * Batches that failed too often land in the dead-letter queue: each of their entries is reported. A message
 * of another run is left for that run; one that cannot be decoded is a protocol error of this run, reported
 * (with the start of its body) and deleted, so that no later run reports it again.
 */
async function drainDeadLetters(
  queue: MessageQueue,
  runId: string,
  emit: (e: MachineEvent) => void,
  now: () => number,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const messages = await queue.receive({ max: 10, waitSec: DEAD_LETTER_POLL_SEC }, signal);
      const take: string[] = [];
      for (const m of messages) {
        const d = decodeMessage(m.body, { expectRun: runId, accept: ["TOC_BATCH"] });
        if (!d.ok && d.error.kind === "foreign-run") continue; // another run's: leave it for that run
        take.push(m.receipt);
        if (!d.ok || d.message.type !== "TOC_BATCH") {
          const reason = d.ok ? `${d.message.type} is not a TOC batch` : d.error.message;
          emit({
            type: "protocol-error",
            at: now(),
            reason: `message ${m.id} after ${m.receiveCount} deliveries: ${reason}`,
            source: "dead-letter queue",
          });
          continue;
        }
        emit({
          type: "dead-lettered",
          at: now(),
          batch: d.message.batch,
          phase: d.message.phase,
          paths: d.message.entries.map((e) => e[0]),
          receiveCount: m.receiveCount,
        });
      }
      if (take.length > 0) await queue.delete(take);
    } catch (err) {
      if (signal.aborted) return;
      log.warn(`reading the dead-letter queue failed, retrying: ${describe(err)}`);
      await pause(DEAD_LETTER_RETRY_MS, signal);
    }
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

function progressMeter(everyMs: number, now: () => number, print: (p: Progress) => void) {
  let last = now();
  let lastCount = 0;
  let lastBytes = 0;
  return {
    update(s: MachineState) {
      const t = now();
      if (t - last < everyMs && !s.finished) return;
      const count = s.write.ok + s.write.failed + s.write.skipped + s.validate.ok + s.validate.failed;
      const dt = Math.max(1, t - last) / 1000;
      const workers = Object.values(s.workers);
      print({
        phase: s.phase,
        stage: s.dispatch?.stage ?? null,
        entriesSent: s.dispatch?.entries ?? 0,
        batchesSent: s.dispatch?.batches ?? 0,
        batchesDone: s.dispatch?.done ?? 0,
        written: s.write.ok,
        validated: s.validate.ok,
        failed: s.errors.length,
        bytes: s.write.bytes,
        filesPerSec: Math.round((count - lastCount) / dt),
        mbPerSec: Math.round(((s.write.bytes - lastBytes) / 1e6 / dt) * 10) / 10,
        workersAlive: workers.filter((w) => w.state !== "LOST" && w.state !== "STOPPED").length,
        workersLost: workers.filter((w) => w.state === "LOST").length,
      });
      last = t;
      lastCount = count;
      lastBytes = s.write.bytes;
    },
  };
}

/**
 * Starts this master's attempt at the run: a new run gets its record; `--resume` reads it, starts the batch
 * numbers above every earlier attempt's, and clears the TOC queue of what an earlier master sent (the work
 * done for it stands: it is found unchanged when the TOC is sent again).
 */
async function beginAttempt(
  runDir: string,
  o: MasterOptions,
  ports: MasterPorts,
  at: number,
): Promise<{ record: RunRecord; resumed: Resumption | undefined }> {
  const existing = await readRunRecord(runDir);
  if (!o.resume) {
    if (existing) {
      throw new Error(
        `run ${o.runId} was started before (record in ${runDir}): add --resume to resume it, or use a new --run-id`,
      );
    }
    const record: RunRecord = {
      runId: o.runId,
      source: o.source,
      startedAtMs: at,
      batchHighWater: 0,
      attempts: [{ startedAtMs: at }],
    };
    await writeRunRecord(runDir, record);
    return { record, resumed: undefined };
  }
  if (!existing)
    throw new Error(`there is no run ${o.runId} to resume in ${runDir}: check --run-id and --state-dir`);
  if (existing.source !== o.source) {
    throw new Error(
      `run ${o.runId} loaded ${existing.source}, not ${o.source}: resume it with the same --source`,
    );
  }
  await ports.tocQueue.purge().catch((err) => o.log.warn(`could not clear the TOC queue: ${describe(err)}`));
  const n = existing.attempts.length + 1;
  const record: RunRecord = { ...existing, attempts: [...existing.attempts, { startedAtMs: at }] };
  await writeRunRecord(runDir, record);
  o.log.info(`resuming run ${o.runId} (attempt ${n}); entries already written will be found unchanged`);
  return {
    record,
    resumed: {
      startedAtMs: existing.startedAtMs,
      firstBatch: existing.batchHighWater,
      note: `resumed at ${new Date(at).toISOString()} (attempt ${n}) after the master of attempt ${n - 1} stopped`,
    },
  };
}
