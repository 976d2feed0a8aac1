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
import { describe } from "../core/errors.ts";
import { Limiter } from "../core/limiter.ts";
import type { Logger } from "../core/log.ts";
import {
  encodeMessage,
  type MessageBody,
  type Phase,
  type StopReason,
  type Tally,
} from "../core/messages.ts";
import type { ControlSubscription, MessageQueue, SpotNotices, Subscriptions } from "../core/ports.ts";
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

export async function runWorker(ports: WorkerPorts, options: WorkerOptions): Promise<WorkerOutcome> {
  const { log, shutdown } = options;
  const firstSub = await withRetry(() => ports.subscriptions.open(options.controlQueueName, shutdown.abort), {
    signal: shutdown.abort,
  });
  log.info(`worker ${options.workerId} listening on its control queue`, {
    controlQueueUrl: firstSub.queue.url,
  });

  /** Ends every loop; aborted once the goodbye is over. */
  const loops = new AbortController();
  /** Cancels the work in hand (the run is over, or the worker leaves). */
  const work = new AbortController();
  /** Put back once the TOC reader has stopped (a release while a receive is in flight could be taken again). */
  const finalReleases: Extract<Command, { type: "release" }>[] = [];
  const tasks = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    tasks.add(p);
    void p.finally(() => tasks.delete(p));
  };
  let ended: (end: SessionEnd) => void = () => {};
  const endPromise = new Promise<SessionEnd>((resolve) => {
    ended = resolve;
  });
  const limiter = new Limiter(options.concurrency);
  const visibilitySec = await readVisibilitySec(ports.tocQueue, shutdown.abort, log);

  const start = initialSession(
    {
      workerId: options.workerId,
      hasHook: options.beforeValidateCmd !== undefined,
      masterTimeoutMs: options.masterTimeoutMs,
      rejoinGraceMs: Math.max(10_000, 3 * options.heartbeatMs),
      foreignPauseMs: 2_000,
      interruptionDrainMs: options.interruptionDrainMs ?? 90_000,
    },
    Date.now(),
    options.runId,
  );
  let state: SessionState = start.state;
  const sqsRequests = () =>
    ports.tocQueue.requests + ports.reportQueue.requests + listener.subscription.queue.requests;

  const head = (kind: "CURRENT" | "FINAL", phase?: Phase): SummaryHead => ({
    type: "SUMMARY",
    worker: options.workerId,
    kind,
    phase: phase ?? state.mode,
    totals: state.totals,
    inFlight: heldReceipts(state).length,
    rssBytes: process.memoryUsage.rss(),
    sqsRequests: sqsRequests(),
    protocolErrors: state.protocolErrors,
  });

  const keeper = new VisibilityKeeper(ports.tocQueue, visibilitySec, () => heldReceipts(state), log);
  const outbox = new Outbox({
    queue: ports.reportQueue,
    runId: () => (state.seen ? state.runId : null),
    head,
    reportMs: options.reportMs,
    heartbeatMs: options.heartbeatMs,
    onSent: (receipts) => dispatch({ type: "results-sent", at: Date.now(), receipts }),
    log,
    signal: loops.signal,
  });
  const listener = new ControlListener(firstSub, {
    log,
    emit: (e) => dispatch(e),
    listening: () => state.control === "listening",
    runId: () => state.runId,
  });
  const reader = new TocReader({
    queue: ports.tocQueue,
    limiter,
    concurrency: options.concurrency,
    mayTake: () => mayTake(state, Date.now()),
    runId: () => state.runId,
    running: () => running(state),
    emit: (e) => dispatch(e),
    ended: () => state.end !== null,
    log,
  });

  const announce = (kind: "INITIALIZED" | "STOPPED", signal: AbortSignal, end?: SessionEnd) =>
    announceState(ports.reportQueue, options, state.runId, listener.subscription, { kind, end }, signal);

  let rejoinCount = 0;
  const rejoin = () =>
    rejoinControl(ports.subscriptions, listener, options.controlQueueName, ++rejoinCount, {
      signal: loops.signal,
      dispatch,
      log,
    });

  const perform = workerPerformer({
    ports,
    options,
    limiter,
    work,
    loops,
    keeper,
    outbox,
    reader,
    state: () => state,
    finalReleases,
    track,
    dispatch: (e) => dispatch(e),
    announce,
    rejoin,
    head,
    ended: (end) => ended(end),
    log,
  });

  function dispatch(e: SessionEvent) {
    const r = step(state, e);
    state = r.state;
    for (const c of r.commands) perform(c);
    reader.wake();
    listener.wake();
  }

  const onStop = () => dispatch({ type: "stop", at: Date.now(), reason: "stopped by signal" });
  const onAbort = () =>
    dispatch({ type: "abort", at: Date.now(), reason: "aborted: in-flight work given up" });
  shutdown.stop.addEventListener("abort", onStop, { once: true });
  shutdown.abort.addEventListener("abort", onAbort, { once: true });

  const ticker = async () => {
    while (!loops.signal.aborted) {
      await pause(500, loops.signal);
      if (!loops.signal.aborted) dispatch({ type: "tick", at: Date.now() });
    }
  };
  /** Cut off the TOC reader's receive in flight once the master has ended the run: nothing on the queue counts. */
  const runOver = new AbortController();
  const readerDone = reader.run(AbortSignal.any([loops.signal, runOver.signal]));
  const running$ = [
    readerDone,
    listener.run(loops.signal),
    keeper.run(loops.signal),
    outbox.runResults(),
    outbox.runHeartbeats(),
    ticker(),
  ];
  if (options.spotNotices) {
    const notices = options.spotNotices;
    running$.push(
      watchSpotNotice(
        {
          notices,
          pollMs: options.spotNoticePollMs ?? 5_000,
          onNotice: (notice) => dispatch({ type: "interruption", at: Date.now(), notice }),
          log,
        },
        loops.signal,
      ),
    );
  }
  for (const c of start.commands) perform(c);
  if (shutdown.stop.aborted) onStop();
  if (shutdown.abort.aborted) onAbort();

  const end = await endPromise;
  shutdown.stop.removeEventListener("abort", onStop);
  shutdown.abort.removeEventListener("abort", onAbort);
  // Wind down: runners (aborted ones return at once), puts-back and deletes, then the goodbye. After a SHUTDOWN
  // the TOC holds nothing of this run any more, so the reader's long poll is not waited out (it was the whole
  // of a small load's SHUTDOWN phase); after a signal or a silent master it is, so that nothing it takes on the
  // queue's side stays hidden until its visibility timeout.
  if (end.why === "shutdown") runOver.abort(new Error("the run is over"));
  // The bound's own timers are cleared once the wind-down is over (a pending one would hold the process).
  const woundDown = new AbortController();
  const goodbye = AbortSignal.any([AbortSignal.timeout(GOODBYE_MS), woundDown.signal]);
  await Promise.race([readerDone, pause(GOODBYE_MS, goodbye)]);
  for (const c of finalReleases.splice(0)) track(keeper.release(c.receipts, c.why, goodbye));
  while (tasks.size > 0 && !goodbye.aborted)
    await Promise.race([Promise.all([...tasks]), pause(GOODBYE_MS, goodbye)]);
  if (end.why === "stopped" || end.why === "interrupted") await outbox.idle(goodbye);
  woundDown.abort(new Error("wound down"));
  await options.notifier?.close();
  await announce("STOPPED", AbortSignal.timeout(GOODBYE_MS), end);
  const sub = listener.subscription;
  try {
    await ports.subscriptions.close(sub.queue.url, sub.subscriptionArn, AbortSignal.timeout(GOODBYE_MS));
  } catch (err) {
    log.warn(`could not remove the control queue: ${describe(err)}`);
  }
  loops.abort(new Error("worker finished"));
  if (!work.signal.aborted) work.abort(new Error("worker finished"));
  await Promise.all(running$);
  if (end.why === "master-silent") log.error(end.reason);
  return { runId: state.runId, totals: state.totals, reason: end.reason, exitCode: end.exitCode };
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
  reportQueue: MessageQueue,
  options: WorkerOptions,
  runId: string | null,
  sub: ControlSubscription,
  what: { readonly kind: "INITIALIZED" | "STOPPED"; readonly end?: SessionEnd | undefined },
  signal: AbortSignal,
): Promise<void> {
  if (!runId) return;
  const { kind, end } = what;
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
    await reportQueue.send([encodeMessage(runId, body)], signal);
  } catch (err) {
    // INITIALIZED is repeated on the master's next MODE while it does not list this worker.
    if (!signal.aborted) options.log.warn(`could not announce ${kind}: ${describe(err)}`);
  }
}

/** Leaves the control queue the master removed and listens on a new one (named anew: SQS refuses a deleted name for 60 s). */
async function rejoinControl(
  subscriptions: Subscriptions,
  listener: ControlListener,
  baseName: string,
  rejoins: number,
  o: { readonly signal: AbortSignal; readonly dispatch: (e: SessionEvent) => void; readonly log: Logger },
): Promise<void> {
  const old: ControlSubscription = listener.subscription;
  try {
    await subscriptions.close(old.queue.url, old.subscriptionArn, o.signal);
  } catch (err) {
    o.log.warn(`could not remove the old control queue ${old.queue.url}: ${describe(err)}`);
  }
  const suffix = `-r${rejoins}`;
  const name = `${baseName.slice(0, 80 - suffix.length)}${suffix}`;
  try {
    const sub = await withRetry(() => subscriptions.open(name, o.signal), { signal: o.signal });
    listener.replace(sub);
    o.dispatch({ type: "rejoined", at: Date.now(), queueUrl: sub.queue.url });
  } catch (err) {
    if (!o.signal.aborted) o.dispatch({ type: "rejoin-failed", at: Date.now(), error: describe(err) });
  }
}

/** What the worker's commands are performed with: the ports, its effect modules and the session's state. */
interface WorkerEffects {
  readonly ports: WorkerPorts;
  readonly options: WorkerOptions;
  readonly limiter: Limiter;
  /** Cancels the work in hand. */
  readonly work: AbortController;
  /** Ends every loop. */
  readonly loops: AbortController;
  readonly keeper: VisibilityKeeper;
  readonly outbox: Outbox;
  readonly reader: TocReader;
  readonly state: () => SessionState;
  /** Put back once the TOC reader has stopped. */
  readonly finalReleases: Extract<Command, { type: "release" }>[];
  /** Work beside the loop, awaited in the wind-down. */
  readonly track: (p: Promise<void>) => void;
  readonly dispatch: (e: SessionEvent) => void;
  readonly announce: (kind: "INITIALIZED" | "STOPPED", signal: AbortSignal) => Promise<void>;
  readonly rejoin: () => Promise<void>;
  readonly head: (kind: "CURRENT" | "FINAL", phase?: Phase) => SummaryHead;
  readonly ended: (end: SessionEnd) => void;
  readonly log: Logger;
}

/** Performs the session's commands; what takes time runs beside the loop, its outcome dispatched as an event. */
function workerPerformer(fx: WorkerEffects): (c: Command) => void {
  return (c) => {
    switch (c.type) {
      case "announce":
        fx.track(fx.announce("INITIALIZED", fx.loops.signal));
        break;
      case "run-batch":
        fx.track(
          (async () => {
            const result = await runBatch(
              c.message,
              c.receiveCount,
              { ...fx.options, limiter: fx.limiter },
              fx.work.signal,
            );
            const at = Date.now();
            fx.dispatch(
              result
                ? { type: "batch-done", at, receipt: c.receipt, result }
                : { type: "batch-abandoned", at, receipt: c.receipt },
            );
          })(),
        );
        break;
      case "release":
        fx.log.info(`putting back ${c.receipts.length} TOC message(s): ${c.why}`, {
          putBack: c.receipts.length,
        });
        if (fx.state().end) fx.finalReleases.push(c);
        else fx.track(fx.keeper.release(c.receipts, c.why, fx.loops.signal));
        break;
      case "report":
        fx.outbox.result(c.receipt, c.result);
        // The last batch in hand: report at once (at a stage's end the master waits for exactly this).
        if (running(fx.state()) === 0 && fx.limiter.queued === 0) fx.outbox.flushNow();
        break;
      case "delete":
        fx.track(
          (async () => {
            try {
              await fx.ports.tocQueue.delete(c.receipts, fx.loops.signal);
            } catch (err) {
              // Reported but not deleted: the batch comes back and the master counts it once.
              if (!fx.loops.signal.aborted)
                fx.log.warn(`could not delete ${c.receipts.length} finished batch(es): ${describe(err)}`);
            }
          })(),
        );
        break;
      case "send":
        fx.outbox.message(() => c.body);
        break;
      case "final-summary":
        fx.outbox.message(() => ({ ...fx.head("FINAL", c.phase), batches: [] }));
        break;
      case "run-hook":
        fx.track(
          (async () => {
            fx.log.info(`running the before-VALIDATE hook: ${fx.options.beforeValidateCmd}`);
            const outcome = await runHook(fx.options.beforeValidateCmd ?? "false", fx.work.signal);
            fx.dispatch({ type: "hook-done", at: Date.now(), outcome });
          })(),
        );
        break;
      case "rejoin":
        fx.track(fx.rejoin());
        break;
      case "abort-work":
        if (!fx.work.signal.aborted) fx.work.abort(new Error(c.reason));
        break;
      case "log":
        fx.log.log(c.level, c.message);
        break;
      case "end":
        fx.ended(c.end);
        fx.reader.wake();
        break;
      default: {
        const never: never = c;
        throw new Error(`unknown command ${JSON.stringify(never)}`);
      }
    }
  };
}
