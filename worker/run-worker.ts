/**
 * A worker's life: open its own control queue on the topic, join the run, then work TOC batches until the
 * master ends the run, a signal stops the worker, or the master falls silent.
 *
 * What happens is decided by the session (`session.ts`, a pure reducer); this loop feeds it the events of its
 * listeners (control queue, TOC queue, batch runners, hook, outbox) and performs the commands it returns.
 * Each batch is reported to the master *before* its message is deleted, so a worker that dies loses nothing:
 * the message comes back after the visibility timeout, another worker redoes it (writes are idempotent), and
 * the master counts each batch once.
 */
import { setMaxListeners } from "node:events";
import { describe } from "../core/errors.ts";
import { Limiter, type Pace } from "../core/limiter.ts";
import type { Logger } from "../core/log.ts";
import {
  encodeMessage,
  type MessageBody,
  type Phase,
  type StopReason,
  type Tally,
} from "../core/messages.ts";
import type {
  ControlSubscription,
  MessageQueue,
  SpotNotice,
  SpotNotices,
  Subscriptions,
} from "../core/ports.ts";
import { pause, withRetry } from "../core/retry.ts";
import type { Shutdown } from "../core/shutdown.ts";
import { runBatch } from "./batch-runner.ts";
import { ControlListener } from "./control-listener.ts";
import { runHook } from "./hook-runner.ts";
import { Outbox } from "./outbox.ts";
import {
  type Command,
  heldReceipts,
  initialSession,
  mayTake,
  running,
  type SessionEnd,
  type SessionEvent,
  type SessionSettings,
  type SessionState,
  step,
} from "./session.ts";
import { watchSpotNotice } from "./spot-watcher.ts";
import type { SummaryHead } from "./summary-pack.ts";
import type { Target } from "./targets/target.ts";
import { TocReader } from "./toc-reader.ts";
import { VisibilityKeeper } from "./visibility-keeper.ts";
import type { Yas3fsNotifier } from "./yas3fs-notifier.ts";

export interface WorkerPorts {
  readonly tocQueue: MessageQueue;
  readonly reportQueue: MessageQueue;
  readonly subscriptions: Subscriptions;
}

export interface WorkerOptions {
  readonly workerId: string;
  readonly host: string;
  readonly runId?: string | undefined;
  readonly concurrency: number;
  readonly controlQueueName: string;
  readonly reportMs: number;
  readonly heartbeatMs: number;
  /** No MODE from the master for this long: release what is held, remove the queue, exit non-zero. */
  readonly masterTimeoutMs: number;
  /** Where a Spot interruption notice is heard (the instance metadata service); none: not watched. */
  readonly spotNotices?: SpotNotices | undefined;
  readonly spotNoticePollMs?: number | undefined;
  /** After a Spot interruption notice: how long the batches in hand may take (default 90 s). */
  readonly interruptionDrainMs?: number | undefined;
  readonly target: Target;
  /** The before-VALIDATE hook's shell command: run before any check; a failure keeps this worker out of VALIDATE. */
  readonly beforeValidateCmd?: string | undefined;
  /** Tells live yas3fs mounts of the target about what was written. */
  readonly notifier?: Yas3fsNotifier | undefined;
  /** `--max-entries-per-sec`: each batch waits for its entries' share of the pace before it is worked. */
  readonly pace?: Pace | undefined;
  readonly log: Logger;
  readonly shutdown: Shutdown;
}

export interface WorkerOutcome {
  readonly runId: string | null;
  readonly totals: { WRITE: Tally; VALIDATE: Tally };
  readonly reason: string;
  /**
   * 0 when the master ended the run or a Spot interruption drained the worker, 130 when stopped by a signal,
   * 1 when the master fell silent.
   */
  readonly exitCode: number;
}

/** How long the goodbye (last reports, STOPPED, removing the queue) may take in all. */
const GOODBYE_MS = 5_000;
/** The wind-down waits this long for the TOC reader's receive in flight (a 2 s long poll, on a slow link). */
const READER_STOP_MS = 20_000;
/** The session's clock: a tick this often (the master's silence, rejoins, pauses). */
const TICK_MS = 500;
/** After a rejoin, a MODE that still lists this worker lost is answered by announcing again for at least this long (or three heartbeats). */
const MIN_REJOIN_GRACE_MS = 10_000;
/** TOC reads pause this long after a message of another run was put back (longer each time in a row). */
const FOREIGN_PAUSE_MS = 2_000;
/** How long a worker told of a Spot interruption finishes what it holds before it puts the rest back. */
const DEFAULT_INTERRUPTION_DRAIN_MS = 90_000;

/** A release the session asked for. */
type Release = Extract<Command, { type: "release" }>;

/**
 * What one worker's run holds: its ports and settings, the session's state, the effect modules that read it, and
 * the controllers that end its work and its loops. Built once by `openWorker`; the loop's steps read and change it.
 */
interface WorkerRun {
  readonly ports: WorkerPorts;
  readonly options: WorkerOptions;
  /** The session's state, replaced by every event. */
  state: SessionState;
  /** Ends every loop; aborted once the goodbye is over. */
  readonly loops: AbortController;
  /** Cancels the work in hand (the run is over, or the worker leaves). */
  readonly work: AbortController;
  /** Cuts off the TOC reader's receive in flight once the master has ended the run: nothing on the queue counts. */
  readonly runOver: AbortController;
  readonly limiter: Limiter;
  /** Work beside the loop, awaited in the wind-down. */
  readonly tasks: Set<Promise<void>>;
  /** Put back once the TOC reader has stopped (a release while a receive is in flight could be taken again). */
  readonly finalReleases: Release[];
  /** Settles with the session's end, given by its `end` command. */
  readonly end: Promise<SessionEnd>;
  readonly ended: (end: SessionEnd) => void;
  /** Control queues opened anew so far (each new one is named after the count). */
  rejoins: number;
  readonly keeper: VisibilityKeeper;
  readonly outbox: Outbox;
  readonly listener: ControlListener;
  readonly reader: TocReader;
}

export async function runWorker(ports: WorkerPorts, options: WorkerOptions): Promise<WorkerOutcome> {
  const { shutdown } = options;
  const { run, startCommands } = await openWorker(ports, options);

  const onStop = () => dispatch(run, { type: "stop", at: Date.now(), reason: "stopped by signal" });
  const onAbort = () =>
    dispatch(run, { type: "abort", at: Date.now(), reason: "aborted: in-flight work given up" });
  shutdown.stop.addEventListener("abort", onStop, { once: true });
  shutdown.abort.addEventListener("abort", onAbort, { once: true });

  const readerDone = run.reader.run(AbortSignal.any([run.loops.signal, run.runOver.signal]));
  const loops = [
    readerDone,
    run.listener.run(run.loops.signal),
    run.keeper.run(run.loops.signal),
    run.outbox.runResults(),
    run.outbox.runHeartbeats(),
    tick(run),
  ];
  if (options.spotNotices) loops.push(watchSpot(run, options.spotNotices));
  for (const c of startCommands) perform(run, c);
  if (shutdown.stop.aborted) onStop();
  if (shutdown.abort.aborted) onAbort();

  const end = await run.end;
  shutdown.stop.removeEventListener("abort", onStop);
  shutdown.abort.removeEventListener("abort", onAbort);
  await windDown(run, end, readerDone);
  await leave(run, end);
  run.loops.abort(new Error("worker finished"));
  if (!run.work.signal.aborted) run.work.abort(new Error("worker finished"));
  await Promise.all(loops);
  if (end.why === "master-silent") options.log.error(end.reason);
  return { runId: run.state.runId, totals: run.state.totals, reason: end.reason, exitCode: end.exitCode };
}

/** Opens the worker's control queue and builds its run: the first session and the effect modules over it. */
async function openWorker(
  ports: WorkerPorts,
  options: WorkerOptions,
): Promise<{ run: WorkerRun; startCommands: readonly Command[] }> {
  const { log, shutdown } = options;
  // Read beside the control queue's set-up (it never fails: it falls back), one round trip less before joining.
  const visibility = readVisibilitySec(ports.tocQueue, shutdown.abort, log);
  const firstSub = await withRetry(() => ports.subscriptions.open(options.controlQueueName, shutdown.abort), {
    signal: shutdown.abort,
  });
  log.info(`worker ${options.workerId} listening on its control queue`, {
    controlQueueUrl: firstSub.queue.url,
  });
  const limiter = new Limiter(options.concurrency);
  const visibilitySec = await visibility;
  const start = initialSession(sessionConfig(options), Date.now(), options.runId);
  let ended: (end: SessionEnd) => void = () => {};
  const end = new Promise<SessionEnd>((resolve) => {
    ended = resolve;
  });
  const loops = new AbortController();
  const work = new AbortController();
  const runOver = new AbortController();
  // Every handler may wait on these at once (a set pace, a prefix's rate): a listener each, by design. The bound
  // still tells a leak from the concurrency (Node warns past 10 listeners).
  setMaxListeners(2 * options.concurrency + 16, loops.signal, work.signal, runOver.signal);
  const run: WorkerRun = {
    ports,
    options,
    state: start.state,
    loops,
    work,
    runOver,
    limiter,
    tasks: new Set(),
    finalReleases: [],
    end,
    ended,
    rejoins: 0,
    keeper: new VisibilityKeeper(ports.tocQueue, visibilitySec, () => heldReceipts(run.state), log),
    outbox: new Outbox({
      queue: ports.reportQueue,
      runId: () => (run.state.seen ? run.state.runId : null),
      head: (kind, phase) => summaryHead(run, kind, phase),
      reportMs: options.reportMs,
      heartbeatMs: options.heartbeatMs,
      onSent: (receipts) => dispatch(run, { type: "results-sent", at: Date.now(), receipts }),
      log,
      signal: loops.signal,
    }),
    listener: new ControlListener(firstSub, {
      log,
      emit: (e) => dispatch(run, e),
      listening: () => run.state.control === "listening",
      runId: () => run.state.runId,
    }),
    reader: new TocReader({
      queue: ports.tocQueue,
      limiter,
      concurrency: options.concurrency,
      mayTake: () => mayTake(run.state, Date.now()),
      runId: () => run.state.runId,
      running: () => running(run.state),
      emit: (e) => dispatch(run, e),
      ended: () => run.state.end !== null,
      log,
    }),
  };
  return { run, startCommands: start.commands };
}

/** What the session is told of this worker's settings. */
function sessionConfig(options: WorkerOptions): SessionSettings {
  return {
    workerId: options.workerId,
    hasHook: options.beforeValidateCmd !== undefined,
    masterTimeoutMs: options.masterTimeoutMs,
    rejoinGraceMs: Math.max(MIN_REJOIN_GRACE_MS, 3 * options.heartbeatMs),
    foreignPauseMs: FOREIGN_PAUSE_MS,
    interruptionDrainMs: options.interruptionDrainMs ?? DEFAULT_INTERRUPTION_DRAIN_MS,
  };
}

/** One event into the session: its commands are performed, and the reader and listener look again. */
function dispatch(run: WorkerRun, event: SessionEvent): void {
  const next = step(run.state, event);
  run.state = next.state;
  for (const c of next.commands) perform(run, c);
  run.reader.wake();
  run.listener.wake();
}

/** The clock of the session: a tick every TICK_MS until the loops end. */
async function tick(run: WorkerRun): Promise<void> {
  const { signal } = run.loops;
  while (!signal.aborted) {
    await pause(TICK_MS, signal);
    if (!signal.aborted) dispatch(run, { type: "tick", at: Date.now() });
  }
}

/** Work beside the loop, awaited in the wind-down. */
function track(run: WorkerRun, task: Promise<void>): void {
  run.tasks.add(task);
  void task.finally(() => run.tasks.delete(task));
}

/**
 * Wind down: runners (aborted ones return at once), puts-back and deletes, all within GOODBYE_MS. After a
 * SHUTDOWN the TOC holds nothing of this run any more, so the reader's long poll is not waited out (it was the
 * whole of a small load's SHUTDOWN phase); after a signal or a silent master it is, so that nothing it takes on
 * the queue's side stays hidden until its visibility timeout.
 */
async function windDown(run: WorkerRun, end: SessionEnd, readerDone: Promise<void>): Promise<void> {
  if (end.why === "shutdown") run.runOver.abort(new Error("the run is over"));
  // The bound's own timers are cleared once the wind-down is over (a pending one would hold the process).
  const woundDown = new AbortController();
  // The goodbye waits for the TOC reader's receive in flight: once the master hears it, it may end this instance,
  // and a receive cut off then would hide whatever it took until the queue's visibility timeout.
  const readerBound = AbortSignal.any([AbortSignal.timeout(READER_STOP_MS), woundDown.signal]);
  const stopped = await Promise.race([
    readerDone.then(() => true),
    pause(READER_STOP_MS, readerBound).then(() => false),
  ]);
  if (!stopped)
    run.options.log.warn(
      `the TOC queue's receive in flight did not end within ${READER_STOP_MS / 1000} s: what it takes comes back after the queue's visibility timeout`,
    );
  const goodbye = AbortSignal.any([AbortSignal.timeout(GOODBYE_MS), woundDown.signal]);
  for (const c of run.finalReleases.splice(0)) track(run, run.keeper.release(c.receipts, c.why, goodbye));
  while (run.tasks.size > 0 && !goodbye.aborted)
    await Promise.race([Promise.all([...run.tasks]), pause(GOODBYE_MS, goodbye)]);
  if (end.why === "stopped" || end.why === "interrupted") await run.outbox.idle(goodbye);
  woundDown.abort(new Error("wound down"));
}

/** Hands the first Spot interruption notice the metadata service gives to the session. */
function watchSpot(run: WorkerRun, notices: SpotNotices): Promise<void> {
  const watch = {
    notices,
    pollMs: run.options.spotNoticePollMs ?? 5_000,
    onNotice: (notice: SpotNotice) => dispatch(run, { type: "interruption", at: Date.now(), notice }),
    log: run.options.log,
  };
  return watchSpotNotice(watch, run.loops.signal);
}

/** The goodbye: the notifier closed, STOPPED (and why) to the master, and the control queue removed. */
async function leave(run: WorkerRun, end: SessionEnd): Promise<void> {
  await run.options.notifier?.close();
  await announceState(run, "STOPPED", AbortSignal.timeout(GOODBYE_MS), end);
  const sub = run.listener.subscription;
  try {
    await run.ports.subscriptions.close(sub.queue.url, sub.subscriptionArn, AbortSignal.timeout(GOODBYE_MS));
  } catch (err) {
    run.options.log.warn(`could not remove the control queue: ${describe(err)}`);
  }
}

/** The head of every SUMMARY this worker sends: who it is, the session's totals and what it holds now. */
function summaryHead(run: WorkerRun, kind: "CURRENT" | "FINAL", phase?: Phase): SummaryHead {
  const { ports, state } = run;
  return {
    type: "SUMMARY",
    worker: run.options.workerId,
    kind,
    phase: phase ?? state.mode,
    totals: state.totals,
    inFlight: heldReceipts(state).length,
    rssBytes: process.memoryUsage.rss(),
    sqsRequests:
      ports.tocQueue.requests + ports.reportQueue.requests + run.listener.subscription.queue.requests,
    protocolErrors: state.protocolErrors,
  };
}

/** The TOC queue's visibility timeout, which the keeper extends by; 30 s when it cannot be read. */
async function readVisibilitySec(queue: MessageQueue, signal: AbortSignal, log: Logger): Promise<number> {
  const fallbackSec = 30;
  try {
    return await queue.visibilityTimeoutSec(signal);
  } catch (err) {
    log.warn(`could not read the TOC queue's visibility timeout, taking ${fallbackSec} s: ${describe(err)}`);
    return fallbackSec;
  }
}

const STOP_REASON: Readonly<Record<SessionEnd["why"], StopReason>> = {
  shutdown: "run over",
  stopped: "signal",
  "master-silent": "master silent",
  interrupted: "spot interruption",
};

/** WORKER_STATE to the master: INITIALIZED (with the control queue to reach it by) or STOPPED (with why). */
async function announceState(
  run: WorkerRun,
  kind: "INITIALIZED" | "STOPPED",
  signal: AbortSignal,
  end?: SessionEnd,
): Promise<void> {
  const { options } = run;
  const runId = run.state.runId;
  if (!runId) return;
  const sub = run.listener.subscription;
  const body: MessageBody = {
    type: "WORKER_STATE",
    worker: options.workerId,
    state: kind,
    host: options.host,
    pid: process.pid,
    concurrency: options.concurrency,
    controlQueueUrl: sub.queue.url,
    subscriptionArn: sub.subscriptionArn,
    ...(kind === "STOPPED" && end ? { reason: STOP_REASON[end.why], detail: end.reason.slice(0, 1000) } : {}),
  };
  try {
    await run.ports.reportQueue.send([encodeMessage(runId, body)], signal);
  } catch (err) {
    // INITIALIZED is repeated on the master's next MODE while it does not list this worker.
    if (!signal.aborted) options.log.warn(`could not announce ${kind}: ${describe(err)}`);
  }
}

/** Leaves the control queue the master removed and listens on a new one (named anew: SQS refuses a deleted name for 60 s). */
async function rejoinControl(run: WorkerRun): Promise<void> {
  const { ports, listener, loops, options } = run;
  const { signal } = loops;
  const old: ControlSubscription = listener.subscription;
  try {
    await ports.subscriptions.close(old.queue.url, old.subscriptionArn, signal);
  } catch (err) {
    options.log.warn(`could not remove the old control queue ${old.queue.url}: ${describe(err)}`);
  }
  const suffix = `-r${++run.rejoins}`;
  const name = `${options.controlQueueName.slice(0, 80 - suffix.length)}${suffix}`;
  try {
    const sub = await withRetry(() => ports.subscriptions.open(name, signal), { signal });
    listener.replace(sub);
    dispatch(run, { type: "rejoined", at: Date.now(), queueUrl: sub.queue.url });
  } catch (err) {
    if (!signal.aborted) dispatch(run, { type: "rejoin-failed", at: Date.now(), error: describe(err) });
  }
}

/** Performs one of the session's commands; what takes time runs beside the loop, its outcome dispatched as an event. */
function perform(run: WorkerRun, command: Command): void {
  switch (command.type) {
    case "announce":
      track(run, announceState(run, "INITIALIZED", run.loops.signal));
      break;
    case "run-batch":
      track(run, runBatchCommand(run, command));
      break;
    case "release":
      run.options.log.info(`putting back ${command.receipts.length} TOC message(s): ${command.why}`, {
        putBack: command.receipts.length,
      });
      if (run.state.end) run.finalReleases.push(command);
      else track(run, run.keeper.release(command.receipts, command.why, run.loops.signal));
      break;
    case "report":
      run.outbox.result(command.receipt, command.result);
      // The last batch in hand: report at once (at a stage's end the master waits for exactly this).
      if (running(run.state) === 0 && run.limiter.queued === 0) run.outbox.flushNow();
      break;
    case "delete":
      track(run, deleteBatches(run, command.receipts));
      break;
    case "send":
      run.outbox.message(() => command.body);
      break;
    case "final-summary":
      run.outbox.message(() => ({ ...summaryHead(run, "FINAL", command.phase), batches: [] }));
      break;
    case "run-hook":
      track(run, runHookCommand(run));
      break;
    case "rejoin":
      track(run, rejoinControl(run));
      break;
    case "abort-work":
      if (!run.work.signal.aborted) run.work.abort(new Error(command.reason));
      break;
    case "log":
      run.options.log.log(command.level, command.message);
      break;
    case "end":
      run.ended(command.end);
      run.reader.wake();
      break;
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
}

async function runBatchCommand(run: WorkerRun, c: Extract<Command, { type: "run-batch" }>): Promise<void> {
  const batchOptions = { ...run.options, limiter: run.limiter };
  const result = await runBatch(c.message, c.receiveCount, batchOptions, run.work.signal);
  const at = Date.now();
  dispatch(
    run,
    result
      ? { type: "batch-done", at, receipt: c.receipt, result }
      : { type: "batch-abandoned", at, receipt: c.receipt },
  );
}

async function deleteBatches(run: WorkerRun, receipts: readonly string[]): Promise<void> {
  const { signal } = run.loops;
  try {
    await run.ports.tocQueue.delete(receipts, signal);
  } catch (err) {
    // Reported but not deleted: the batch comes back and the master counts it once.
    if (!signal.aborted)
      run.options.log.warn(`could not delete ${receipts.length} finished batch(es): ${describe(err)}`);
  }
}

async function runHookCommand(run: WorkerRun): Promise<void> {
  const cmd = run.options.beforeValidateCmd;
  run.options.log.info(`running the before-VALIDATE hook: ${cmd}`);
  const outcome = await runHook(cmd ?? "false", run.work.signal);
  dispatch(run, { type: "hook-done", at: Date.now(), outcome });
}
