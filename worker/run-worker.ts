/**
 * A worker's life: open its own control queue on the topic, join the run, announce itself until the master
 * has seen it, then consume TOC batches until told to shut down.
 *
 * Each batch is worked with bounded concurrency; its result is reported to the master *before* its message is
 * deleted, so a worker that dies loses nothing: the message comes back after the visibility timeout, another
 * worker redoes it (writes are idempotent), and the master counts each batch once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe } from "../core/errors.ts";
import { Limiter } from "../core/limiter.ts";
import type { Logger } from "../core/log.ts";
import {
  type BatchResult,
  decodeMessage,
  emptyTally,
  encodeMessage,
  entryFromWire,
  type MessageBody,
  type PathIssue,
  type Phase,
  type Tally,
  type TocBatchMessage,
  type WorkPhase,
} from "../core/messages.ts";
import type { ControlSubscription, MessageQueue, ReceivedMessage, Subscriptions } from "../core/ports.ts";
import type { Shutdown } from "../core/shutdown.ts";
import { FsTarget } from "./targets/fs-target.ts";
import { rsyncBatch } from "./targets/rsync-copier.ts";
import type { EntryOutcome, Target } from "./targets/target.ts";
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
  readonly copier: "fs" | "rsync";
  readonly controlQueueName: string;
  readonly reportMs: number;
  readonly heartbeatMs: number;
  readonly target: Target;
  /** Run on entering VALIDATE, before any check; a failure is reported and the checks go on. */
  readonly beforeValidate?: (() => Promise<void>) | undefined;
  /** Tells live yas3fs mounts of the target about what was written. */
  readonly notifier?: Yas3fsNotifier | undefined;
  readonly log: Logger;
  readonly shutdown: Shutdown;
}

export interface WorkerOutcome {
  readonly runId: string | null;
  readonly totals: { WRITE: Tally; VALIDATE: Tally };
  readonly reason: string;
}

interface Finished {
  readonly result: BatchResult;
  readonly receipt: string;
}

const MAX_REASON = 300;

export async function runWorker(ports: WorkerPorts, o: WorkerOptions): Promise<WorkerOutcome> {
  const { log, shutdown } = o;
  const sub: ControlSubscription = await ports.subscriptions.open(o.controlQueueName, shutdown.abort);
  log.info(`worker ${o.workerId} listening on its control queue`, { controlQueueUrl: sub.queue.url });

  let runId: string | null = o.runId ?? null;
  let masterPhase: Phase = "INITIALIZING";
  let lastModeSentAtMs = 0;
  /** VALIDATE batches wait until the before-VALIDATE hook has run. */
  let validateReady = o.beforeValidate === undefined;
  let openValidate: () => void = () => {};
  const validateGate = new Promise<void>((resolve) => (openValidate = resolve));
  if (validateReady) openValidate();
  const writing = new Set<Promise<void>>();
  const notes: string[] = [];
  let seen = false;
  let shutdownReason: string | null = null;
  let protocolErrors = 0;
  let errorsSent = 0;
  const totals = { WRITE: emptyTally(), VALIDATE: emptyTally() };
  const finished: Finished[] = [];
  const inFlight = new Map<string, ReceivedMessage>(); // by receipt, until deleted
  const running = new Set<Promise<void>>();
  const limiter = new Limiter(o.concurrency);
  const workAbort = new AbortController();
  const abandoned = new Promise<void>((resolve) =>
    workAbort.signal.addEventListener("abort", () => resolve()),
  );
  shutdown.abort.addEventListener("abort", () => workAbort.abort(), { once: true });
  let changed: () => void = () => {};
  const nextChange = () => new Promise<void>((r) => (changed = r));

  const send = async (body: MessageBody, signal: AbortSignal = workAbort.signal) => {
    if (!runId) return;
    await ports.reportQueue.send([encodeMessage(runId, body)], signal);
  };
  const announce = (state: "INITIALIZED" | "IDLE" | "STOPPED", signal?: AbortSignal) =>
    send(
      {
        type: "WORKER_STATE",
        worker: o.workerId,
        state,
        host: o.host,
        pid: process.pid,
        concurrency: o.concurrency,
        controlQueueUrl: sub.queue.url,
        subscriptionArn: sub.subscriptionArn,
      },
      signal,
    );

  // ---- control: the master's broadcasts, through this worker's own queue ----
  const controlLoop = async () => {
    while (shutdownReason === null && !shutdown.stop.aborted) {
      let messages: ReceivedMessage[];
      try {
        messages = await sub.queue.receive({ max: 10, waitSec: 2 }, shutdown.stop);
      } catch (err) {
        if (shutdown.stop.aborted) return;
        log.warn(`control queue: ${describe(err)}`);
        await sleep(1_000, undefined, { signal: shutdown.stop }).catch(() => {});
        continue;
      }
      for (const m of messages) {
        const d = decodeMessage(m.body, { expectRun: runId ?? undefined, accept: ["MODE", "SHUTDOWN"] });
        if (!d.ok) {
          protocolErrors++;
          log.warn(`ignored a control message: ${d.error.message}`);
          continue;
        }
        const msg = d.message;
        if (runId === null) {
          if (msg.type !== "MODE") continue;
          runId = msg.run;
          log.info(`joined run ${runId}`);
        }
        // SNS does not keep order: a mode older than one already seen is stale. (INITIALIZING always counts:
        // a restarted master, perhaps on another machine's clock, begins with it.)
        if (msg.type === "MODE") {
          if (msg.phase !== "INITIALIZING" && msg.sentAtMs < lastModeSentAtMs) continue;
          lastModeSentAtMs = msg.sentAtMs;
        }
        if (msg.type === "SHUTDOWN") {
          shutdownReason = msg.reason;
          workAbort.abort(); // the run is over: unfinished batches are of no use now
        } else if (msg.type === "MODE") {
          await onMode(msg.phase, msg.known);
        }
      }
      if (messages.length > 0) await sub.queue.delete(messages.map((m) => m.receipt)).catch(() => {});
      changed();
    }
    changed();
  };

  const onMode = async (phase: Phase, known: readonly string[]) => {
    const previous = masterPhase;
    masterPhase = phase;
    if (phase === "INITIALIZING") {
      // Announce until listed; also to a master that restarted (resumed) and does not know us any more.
      if (known.includes(o.workerId)) seen = true;
      else await announce("INITIALIZED").catch((err) => log.warn(`announce failed: ${describe(err)}`));
    } else if (!seen) {
      seen = true;
      await announce("INITIALIZED").catch(() => {}); // a late joiner
    }
    if (phase !== previous && (previous === "WRITE" || previous === "VALIDATE")) {
      await sendSummary("FINAL", previous).catch((err) => log.warn(`summary failed: ${describe(err)}`));
    }
    if (phase === "VALIDATE" && previous !== "VALIDATE" && !validateReady && o.beforeValidate) {
      await drained(); // nothing of WRITE may still be writing while the target is remounted
      try {
        await o.beforeValidate();
        log.info("before-VALIDATE hook done");
      } catch (err) {
        const note = `before-VALIDATE hook failed: ${describe(err)}`;
        notes.push(note);
        log.error(note);
      }
      validateReady = true;
      openValidate();
      changed();
    }
    if (phase === "ERROR_REPORT" && previous !== "ERROR_REPORT") {
      await flushResults();
      await send({ type: "ERROR_REPORT", worker: o.workerId, errorsSent, protocolErrors, notes }).catch(
        (err) => log.warn(`error report failed: ${describe(err)}`),
      );
    }
  };

  // ---- reporting: finished batches go to the master, then their messages are deleted ----
  let lastSummaryMs = 0;
  const sendSummary = async (kind: "CURRENT" | "FINAL", phase: Phase) => {
    const taken = finished.splice(0, finished.length);
    const chunks = chunkResults(taken);
    for (const chunk of chunks.length > 0 ? chunks : [[]]) {
      await send({
        type: "SUMMARY",
        worker: o.workerId,
        kind,
        phase,
        totals,
        batches: chunk.map((f) => f.result),
        inFlight: inFlight.size,
        rssBytes: process.memoryUsage.rss(),
        sqsRequests: ports.tocQueue.requests + ports.reportQueue.requests + sub.queue.requests,
        protocolErrors,
      }).catch((err) => {
        finished.unshift(...chunk); // not reported: keep it, and keep its message
        throw err;
      });
      errorsSent += chunk.reduce((n, f) => n + f.result.errors.length, 0);
      const receipts = chunk.map((f) => f.receipt);
      for (const r of receipts) inFlight.delete(r);
      await ports.tocQueue.delete(receipts).catch((err) => {
        // Reported but not deleted: the batch comes back and is counted once by the master.
        log.warn(`could not delete finished batches: ${describe(err)}`);
      });
    }
    lastSummaryMs = Date.now();
  };
  const flushResults = async () => {
    if (finished.length > 0) await sendSummary("CURRENT", masterPhase).catch(() => {});
  };
  // A worker with nothing left in hand reports at once: at the end of a stage the master waits for exactly
  // these results, and every report period waited there is the whole run waiting.
  // A wake while a report is being sent is kept for the next wait.
  let wakeNow = false;
  let waiting: (() => void) | null = null;
  const wakeReport = () => {
    wakeNow = true;
    waiting?.();
  };
  const reportLoop = async () => {
    while (shutdownReason === null && !shutdown.abort.aborted) {
      if (!wakeNow)
        await Promise.race([
          sleep(o.reportMs, undefined, { signal: shutdown.abort }).catch(() => {}),
          new Promise<void>((resolve) => {
            waiting = resolve;
          }),
        ]);
      waiting = null;
      wakeNow = false;
      if (!runId || !seen) continue;
      const due = finished.length > 0 || Date.now() - lastSummaryMs >= o.heartbeatMs;
      if (due)
        await sendSummary("CURRENT", masterPhase).catch((err) =>
          log.warn(`summary failed: ${describe(err)}`),
        );
      if (shutdown.stop.aborted && running.size === 0 && finished.length === 0) return;
    }
  };

  // ---- keeping batches hidden while they are worked on ----
  const visibilitySec = await ports.tocQueue.visibilityTimeoutSec(shutdown.abort).catch(() => 30);
  const extendLoop = async () => {
    const everyMs = Math.max(1_000, (visibilitySec * 1000) / 3);
    while (shutdownReason === null && !shutdown.abort.aborted) {
      await sleep(everyMs, undefined, { signal: shutdown.abort }).catch(() => {});
      const receipts = [...inFlight.keys()];
      if (receipts.length === 0) continue;
      await ports.tocQueue
        .extend(receipts, visibilitySec, shutdown.abort)
        .catch((err) => log.warn(`could not extend visibility: ${describe(err)}`));
    }
  };

  // ---- the consume loop ----
  const processBatch = async (m: ReceivedMessage, msg: TocBatchMessage) => {
    if (msg.phase === "VALIDATE") await Promise.race([validateGate, abandoned]);
    const entries = msg.entries.map(entryFromWire);
    let outcomes: EntryOutcome[];
    const target = o.target;
    if (msg.phase === "WRITE" && o.copier === "rsync" && target instanceof FsTarget) {
      outcomes = await limiter.run(() => rsyncBatch(target, entries, msg.stage, workAbort.signal));
    } else {
      const signal = workAbort.signal;
      outcomes = await Promise.all(
        entries.map((e) =>
          limiter.run(() =>
            msg.phase === "WRITE" ? target.write(e, msg.stage, signal) : target.check(e, signal),
          ),
        ),
      );
    }
    if (workAbort.signal.aborted) return; // abandoned: the message comes back if the run goes on
    const result = toResult(
      msg.batch,
      msg.phase,
      m.receiveCount,
      entries.map((e) => e.path),
      outcomes,
    );
    const t = totals[msg.phase];
    totals[msg.phase] = {
      ok: t.ok + result.ok,
      failed: t.failed + result.failed,
      skipped: t.skipped + result.skipped,
      unchanged: t.unchanged + result.unchanged,
      bytes: t.bytes + result.bytes,
    };
    if (msg.phase === "WRITE" && result.ok > 0) {
      o.notifier?.touched(entries.filter((_, i) => outcomes[i]?.status === "ok").map((e) => e.path));
    }
    finished.push({ result, receipt: m.receipt });
    if (running.size <= 1 && limiter.queued === 0) wakeReport(); // this batch was the last one in hand
  };

  /** Waits until no WRITE batch is being worked on. */
  const drained = async () => {
    while (writing.size > 0) await Promise.race(writing);
  };
  let avgBatchEntries = 2 * o.concurrency;
  const consumeLoop = async () => {
    while (shutdownReason === null && !shutdown.stop.aborted) {
      if (
        !runId ||
        !seen ||
        (masterPhase !== "WRITE" && masterPhase !== "VALIDATE") ||
        (masterPhase === "VALIDATE" && !validateReady)
      ) {
        await Promise.race([
          nextChange(),
          sleep(1_000, undefined, { signal: shutdown.stop }).catch(() => {}),
        ]);
        continue;
      }
      // Back-pressure: take more only while fewer entries wait than there are handlers, or than a quarter of a
      // batch (so the next batch is here before this one runs dry: a receive takes a round trip).
      const enough = Math.max(o.concurrency, avgBatchEntries / 4);
      if (running.size >= 100) {
        await Promise.race(running);
        continue;
      }
      if (limiter.queued >= enough) {
        await Promise.race([...running, limiter.whenQueuedBelow(enough)]);
        continue;
      }
      // Take as many batches as keep about two rounds of entries waiting: one at first (batches can be large
      // and other workers want their share), more when batches turn out small.
      const want = Math.ceil((2 * o.concurrency - limiter.queued) / avgBatchEntries);
      let messages: ReceivedMessage[];
      try {
        messages = await ports.tocQueue.receive(
          { max: Math.max(1, Math.min(10, want)), waitSec: 2 },
          shutdown.stop,
        );
      } catch (err) {
        if (shutdown.stop.aborted) break;
        log.warn(`TOC queue: ${describe(err)}`);
        await sleep(1_000, undefined, { signal: shutdown.stop }).catch(() => {});
        continue;
      }
      const foreign: string[] = [];
      for (const m of messages) {
        const d = decodeMessage(m.body, { expectRun: runId, accept: ["TOC_BATCH"] });
        if (!d.ok || d.message.type !== "TOC_BATCH") {
          protocolErrors++;
          log.warn(`dropped a TOC message: ${d.ok ? "not a TOC batch" : d.error.message}`);
          foreign.push(m.receipt);
          continue;
        }
        const batch = d.message;
        avgBatchEntries = 0.8 * avgBatchEntries + 0.2 * batch.entries.length;
        inFlight.set(m.receipt, m);
        const task: Promise<void> = processBatch(m, batch)
          .catch((err) => log.error(`batch ${batch.batch} failed unexpectedly: ${describe(err)}`))
          .finally(() => running.delete(task));
        running.add(task);
        if (batch.phase === "WRITE") {
          writing.add(task);
          task.finally(() => writing.delete(task));
        }
      }
      if (foreign.length > 0) await ports.tocQueue.delete(foreign).catch(() => {});
    }
    await Promise.allSettled(running); // drain (aborted work returns at once)
  };

  if (runId) await announce("INITIALIZED").catch((err) => log.warn(`announce failed: ${describe(err)}`));
  const loops = [controlLoop(), reportLoop(), extendLoop(), consumeLoop()];
  await loops[3];
  await o.notifier?.close();
  // Drained: report what finished, say goodbye, remove the control queue.
  if (!workAbort.signal.aborted) await flushResults();
  shutdownReason ??= shutdown.stop.aborted ? "stopped by signal" : "stopped";
  changed();
  const goodbye = new AbortController();
  setTimeout(() => goodbye.abort(), 5_000).unref();
  // After SHUTDOWN the work signal is aborted: the goodbye has its own few seconds.
  await announce("STOPPED", goodbye.signal).catch(() => {});
  await ports.subscriptions
    .close(sub.queue.url, sub.subscriptionArn, goodbye.signal)
    .catch((err) => log.warn(`could not remove the control queue: ${describe(err)}`));
  shutdown.requestAbort("worker finished"); // ends the remaining loops
  await Promise.allSettled(loops);
  return { runId, totals, reason: shutdownReason };
}

function toResult(
  batch: number,
  phase: WorkPhase,
  receiveCount: number,
  paths: readonly string[],
  outcomes: readonly EntryOutcome[],
): BatchResult {
  const r = { batch, phase, ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0, receiveCount };
  const errors: PathIssue[] = [];
  const skips: PathIssue[] = [];
  outcomes.forEach((o, i) => {
    r[o.status]++;
    r.bytes += o.status === "ok" ? o.bytes : 0;
    const issue = { path: paths[i] ?? "", reason: (o.reason ?? "").slice(0, MAX_REASON) };
    if (o.status === "failed") errors.push(issue);
    if (o.status === "skipped") skips.push(issue);
  });
  return { ...r, errors, skips };
}

/** Splits results so that each SUMMARY stays within the message size limit. */
function chunkResults(items: Finished[]): Finished[][] {
  const limit = 180 * 1024;
  const chunks: Finished[][] = [];
  let cur: Finished[] = [];
  let bytes = 0;
  for (const f of items) {
    const n = Buffer.byteLength(JSON.stringify(f.result));
    if (cur.length > 0 && bytes + n > limit) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += n;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}
