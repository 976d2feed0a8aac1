/**
 * The master's run loop: feeds events (worker reports, dispatcher progress, ticks, signals) to the phase
 * machine one at a time and performs the commands it returns through the ports. Reads top to bottom:
 * start the sources of events, loop until the machine says finish, stop the sources, build the report.
 * The sources and effects have their own modules: the report intake (reports and dead letters), the
 * broadcaster, the phase dispatch, the progress meter.
 */
import fs from "node:fs/promises";
import { describe, isAbort } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { ObjectStore } from "../core/object-store.ts";
import type { MessageQueue, Subscriptions, TargetDeleter, Topic } from "../core/ports.ts";
import { runDir, tocFiles } from "../core/run-paths.ts";
import type { Shutdown } from "../core/shutdown.ts";
import { checkRunSource, runToc, type TocSourceOptions } from "../toc/toc-source.ts";
import { type Broadcaster, createBroadcaster } from "./broadcaster.ts";
import { locationKey } from "./deletions.ts";
import { ManifestRecorder } from "./manifest.ts";
import { dispatchPhase, type PhaseDispatchOptions } from "./phase-dispatch.ts";
import {
  type Command,
  initialState,
  type MachineEvent,
  type MachineSettings,
  type MachineState,
  type Resumption,
  start,
  step,
} from "./phase-machine.ts";
import { writeFailures } from "./phase-results.ts";
import { type Progress, progressMeter } from "./progress-meter.ts";
import type { RunReport } from "./report.ts";
import {
  drainDeadLetters,
  type FoundDeadLetterQueue,
  findDeadLetterQueue,
  receiveReports,
} from "./report-intake.ts";
import { finishRun, type SyncOptions } from "./run-finish.ts";
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
  /** The object store of a bucket: for a manifest written to s3:// (`sync.manifestOut`). */
  readonly storeFor?: ((bucket: string) => ObjectStore) | undefined;
  /** Removes what the source lost from the target (`sync.delete`). */
  readonly deleter?: TargetDeleter | undefined;
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
  /** The verification manifest and the deletions (see run-finish.ts). */
  readonly sync?: SyncOptions | undefined;
  readonly now?: () => number;
}

/** A command's AWS call may take this long at most (with its retries): an outage must not hold the loop. */
const COMMAND_TIMEOUT_MS = 10_000;
/** The loop's clock: a tick event this often (timeouts, the beacon, progress). */
const DEFAULT_TICK_MS = 250;
/** While SQS cannot be reached, the run outlasts it this long when not told otherwise. */
const DEFAULT_AWS_DOWN_MS = 300_000;

export async function runMaster(ports: MasterPorts, options: MasterOptions): Promise<RunReport> {
  const now = options.now ?? Date.now;
  const { log } = options;
  await checkRunSource(options.source, ports.sourceStore);
  const dir = runDir(options.stateDir, options.runId);
  await fs.mkdir(dir, { recursive: true });
  const dlq = await findDeadLetterQueue(ports);
  const { record, resumed } = await beginAttempt(dir, options, ports, now());

  const events = eventQueue();
  const emit = events.emit;
  listenForInterrupts(options, emit, now);
  const awsDownMs = options.awsDownTimeoutMs ?? DEFAULT_AWS_DOWN_MS;
  const sources = startSources(ports, options, dlq, { emit, now, awsDownMs });
  let state: MachineState = initialState(options.runId, options.settings, now(), resumed);
  const batches = batchReserver(dir, record);
  const manifest = options.sync?.manifestOut ? new ManifestRecorder(dir, tocFiles(dir)) : null;
  const progress = progressMeter(options.progressMs, now, (p) => options.onProgress?.(p));
  // Not tied to the abort signal: after a second Ctrl-C the queues must still be removed.
  const bounded = () => AbortSignal.timeout(COMMAND_TIMEOUT_MS);
  const broadcaster = createBroadcaster({ topic: ports.topic, runId: options.runId, now, log, bounded });
  const dispatch: PhaseDispatchOptions = {
    runId: options.runId,
    queue: ports.tocQueue,
    batchEntries: options.batchEntries,
    batchBytes: options.batchBytes,
    lingerMs: options.lingerMs,
    emit,
    now,
    retryForMs: awsDownMs,
    reserve: batches.reserve,
    files: tocFiles(dir),
    source: (signal) => runToc(options.source, ports.sourceStore, options.toc, signal),
  };
  const fx = { ports, broadcaster, dispatch, state: () => state, emit, now, log, bounded };
  const { perform, stopDispatch } = performer({ ...fx, background: sources.background });

  // ---- the loop: one event at a time through the phase machine, its commands performed in order ----
  const first = start(state);
  state = first.state;
  for (const c of first.commands) await perform(c);
  log.info(`run ${options.runId}: waiting for ${options.settings.expectedWorkers} worker(s)`, {
    runId: options.runId,
  });
  while (!state.finished) {
    const event = await events.next();
    const r = step(state, event);
    manifest?.observe(state, event, r.state);
    state = r.state;
    for (const c of r.commands) await perform(c);
    progress.update(state);
  }

  const peakRss = sources.stopTicks();
  stopDispatch();
  await broadcaster.settled(); // the last SHUTDOWN goes out before we stop
  await sources.stop();
  const sqsRequests = ports.tocQueue.requests + ports.reportQueue.requests + (dlq.queue?.requests ?? 0);
  const peakRssBytes = Math.max(peakRss, process.memoryUsage.rss());
  const report = await finishRun(state, { ports, options, manifest, sqsRequests, peakRssBytes, now });
  await endAttempt(dir, batches.record(), report.outcome, now(), log);
  return report;
}

/** A signal (first or second) and the caller's fatal signal become events of the machine. */
function listenForInterrupts(
  options: MasterOptions,
  emit: (e: MachineEvent) => void,
  now: () => number,
): void {
  const { shutdown, fatal } = options;
  shutdown.stop.addEventListener("abort", () => emit({ type: "interrupt", at: now() }), { once: true });
  shutdown.abort.addEventListener("abort", () => emit({ type: "interrupt", at: now() }), { once: true });
  fatal?.addEventListener("abort", () => emit({ type: "fatal", at: now(), reason: describe(fatal.reason) }), {
    once: true,
  });
}

/** The sources of events beside the loop: the report queue, the dead-letter queue and the clock. */
interface EventSources {
  /** Work that runs beside the loop, awaited when the run ends. */
  readonly background: Promise<unknown>[];
  /** Stops the clock; returns the peak RSS it sampled. */
  readonly stopTicks: () => number;
  /** Stops the pollers and waits for everything beside the loop. */
  readonly stop: () => Promise<void>;
}

function startSources(
  ports: MasterPorts,
  options: MasterOptions,
  dlq: FoundDeadLetterQueue,
  o: { readonly emit: (e: MachineEvent) => void; readonly now: () => number; readonly awsDownMs: number },
): EventSources {
  const { emit, now } = o;
  const done = new AbortController();
  const background: Promise<unknown>[] = [];
  const intake = { runId: options.runId, emit, now, log: options.log, signal: done.signal };
  if (dlq.note) emit({ type: "note", at: now(), ...dlq.note });
  background.push(receiveReports(ports.reportQueue, o.awsDownMs, intake));
  if (dlq.queue) background.push(drainDeadLetters(dlq.queue, intake));
  let peakRss = process.memoryUsage.rss();
  const ticker = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    emit({ type: "tick", at: now() });
  }, options.tickMs ?? DEFAULT_TICK_MS);
  return {
    background,
    stopTicks: () => {
      clearInterval(ticker);
      return peakRss;
    },
    stop: async () => {
      done.abort();
      await Promise.allSettled(background);
    },
  };
}

/** The run record as batch numbers are reserved in it (by the dispatcher, one send at a time, before use). */
function batchReserver(
  dir: string,
  first: RunRecord,
): { readonly reserve: (end: number) => Promise<void>; readonly record: () => RunRecord } {
  let record = first;
  return {
    reserve: async (end) => {
      const highWater = reservationFor(record.batchHighWater, end);
      if (highWater === null) return;
      record = { ...record, batchHighWater: highWater };
      await writeRunRecord(dir, record);
    },
    record: () => record,
  };
}

interface Effects {
  readonly ports: MasterPorts;
  readonly broadcaster: Broadcaster;
  readonly dispatch: PhaseDispatchOptions;
  /** The machine's state when a command is performed. */
  readonly state: () => MachineState;
  readonly emit: (e: MachineEvent) => void;
  readonly now: () => number;
  readonly log: Logger;
  readonly bounded: () => AbortSignal;
  /** Work that runs beside the loop (dispatches), awaited when the run ends. */
  readonly background: Promise<unknown>[];
}

/** Performs the phase machine's commands through the ports: at most one dispatch at a time. */
function performer(fx: Effects): { perform: (c: Command) => Promise<void>; stopDispatch: () => void } {
  const { ports, emit, now, log, bounded } = fx;
  const current: { dispatch: AbortController | null } = { dispatch: null };
  const perform = async (command: Command): Promise<void> => {
    switch (command.type) {
      case "broadcast":
        fx.broadcaster.send(command.message);
        return;
      case "dispatch": {
        current.dispatch?.abort();
        const ctl = new AbortController();
        current.dispatch = ctl;
        const stage = { ...command, excluded: writeFailures(fx.state()) };
        const task = dispatchPhase(fx.dispatch, stage, ctl.signal).catch((err) => {
          if (ctl.signal.aborted || isAbort(err)) return;
          emit({ type: "dispatch-failed", at: now(), reason: describe(err) });
        });
        fx.background.push(task);
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
          await ports.subscriptions.close(command.queueUrl, command.subscriptionArn, bounded());
        } catch (err) {
          log.warn(`could not remove the control queue of ${command.worker}: ${describe(err)}`);
        }
        return;
      case "log":
        log.log(command.level, command.message);
        return;
      case "finish":
        return;
      default: {
        const never: never = command;
        throw new Error(`unhandled command ${JSON.stringify(never)}`);
      }
    }
  };
  return { perform, stopDispatch: () => current.dispatch?.abort() };
}

/** The events every source pushes into, taken by the loop one at a time, in order. */
function eventQueue(): { emit: (e: MachineEvent) => void; next: () => Promise<MachineEvent> } {
  const events: MachineEvent[] = [];
  let wake: (() => void) | null = null;
  return {
    emit(e) {
      events.push(e);
      wake?.();
    },
    async next() {
      while (events.length === 0) await new Promise<void>((r) => (wake = r));
      wake = null;
      return events.shift() as MachineEvent;
    },
  };
}

/** Closes this master's attempt in the run record, with its outcome. */
async function endAttempt(
  dir: string,
  record: RunRecord,
  outcome: string,
  at: number,
  log: Logger,
): Promise<void> {
  const attempts = [...record.attempts];
  const last = attempts.pop();
  attempts.push({ startedAtMs: last?.startedAtMs ?? at, endedAtMs: at, outcome });
  await writeRunRecord(dir, { ...record, attempts }).catch((err) =>
    log.warn(`could not update the run record: ${describe(err)}`),
  );
}

/**
 * Starts this master's attempt at the run: a new run gets its record; `--resume` reads it, starts the batch
 * numbers above every earlier attempt's, and clears the TOC queue of what an earlier master sent (the work
 * done for it stands: it is found unchanged when the TOC is sent again).
 */
async function beginAttempt(
  runDir: string,
  options: MasterOptions,
  ports: MasterPorts,
  at: number,
): Promise<{ record: RunRecord; resumed: Resumption | undefined }> {
  const existing = await readRunRecord(runDir);
  if (!options.resume) {
    if (existing) {
      throw new Error(
        `run ${options.runId} was started before (record in ${runDir}): add --resume to resume it, or use a new --run-id`,
      );
    }
    const record: RunRecord = {
      runId: options.runId,
      source: options.source,
      ...(options.sync?.target ? { target: locationKey(options.sync.target) } : {}),
      startedAtMs: at,
      batchHighWater: 0,
      attempts: [{ startedAtMs: at }],
    };
    await writeRunRecord(runDir, record);
    return { record, resumed: undefined };
  }
  if (!existing)
    throw new Error(
      `there is no run ${options.runId} to resume in ${runDir}: check --run-id and --state-dir`,
    );
  if (existing.source !== options.source) {
    throw new Error(
      `run ${options.runId} loaded ${existing.source}, not ${options.source}: resume it with the same --source`,
    );
  }
  await ports.tocQueue
    .purge()
    .catch((err) => options.log.warn(`could not clear the TOC queue: ${describe(err)}`));
  const n = existing.attempts.length + 1;
  const record: RunRecord = { ...existing, attempts: [...existing.attempts, { startedAtMs: at }] };
  await writeRunRecord(runDir, record);
  options.log.info(
    `resuming run ${options.runId} (attempt ${n}); entries already written will be found unchanged`,
  );
  return {
    record,
    resumed: {
      startedAtMs: existing.startedAtMs,
      firstBatch: existing.batchHighWater,
      note: `resumed at ${new Date(at).toISOString()} (attempt ${n}) after the master of attempt ${n - 1} stopped`,
    },
  };
}
