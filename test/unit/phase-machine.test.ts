import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BatchResult, HookMessage, SummaryMessage, WorkerStateMessage } from "../../core/messages.ts";
import {
  type Command,
  initialState,
  type MachineEvent,
  type MachineState,
  step,
} from "../../master/phase-machine.ts";
import { machineSettings as settings } from "../helpers/machine.ts";

const RUN = "run-1";

function hello(worker: string, state: WorkerStateMessage["state"] = "INITIALIZED"): WorkerStateMessage {
  return {
    v: 1,
    run: RUN,
    type: "WORKER_STATE",
    worker,
    state,
    host: "h",
    pid: 1,
    concurrency: 4,
    controlQueueUrl: `http://q/000000000000/${worker}`,
    subscriptionArn: `arn:sub:${worker}`,
  };
}

function result(batch: number, phase: "WRITE" | "VALIDATE", over: Partial<BatchResult> = {}): BatchResult {
  return {
    batch,
    phase,
    ok: 2,
    failed: 0,
    skipped: 0,
    unchanged: 0,
    bytes: 10,
    receiveCount: 1,
    errors: [],
    skips: [],
    ...over,
  } as BatchResult;
}

function summary(worker: string, batches: BatchResult[]): SummaryMessage {
  const t = { ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0 };
  return {
    v: 1,
    run: RUN,
    type: "SUMMARY",
    worker,
    kind: "CURRENT",
    phase: "WRITE",
    totals: { WRITE: t, VALIDATE: t },
    batches,
    inFlight: 0,
    rssBytes: 1,
    sqsRequests: 3,
    protocolErrors: 0,
  };
}

/** Runs events in order and returns the final state and every command issued. */
function run(events: MachineEvent[], s0: MachineState = initialState(RUN, settings, 0)) {
  let state = s0;
  const commands: Command[] = [];
  for (const e of events) {
    const r = step(state, e);
    state = r.state;
    commands.push(...r.commands);
  }
  return { state, commands };
}

const types = (cs: Command[]) =>
  cs.map((c) => (c.type === "broadcast" ? `broadcast:${c.message.type}` : c.type));
/** The modes broadcast after INITIALIZING (where every new worker is acknowledged by a beacon). */
const modes = (cs: Command[]) =>
  cs.flatMap((c) =>
    c.type === "broadcast" && c.message.type === "MODE" && c.message.phase !== "INITIALIZING"
      ? [c.message.phase]
      : [],
  );

/** The dispatcher hands batches `[first, first + batches)` of `per` entries each to SQS, and may say it is done. */
function sent(
  first: number,
  batches: number,
  o: { per?: number; at?: number; complete?: boolean; dirs?: number } = {},
) {
  const entries = batches * (o.per ?? 2);
  const at = o.at ?? 3;
  const events: MachineEvent[] = [{ type: "batches-issued", at, first, batches, entries }];
  if (o.complete ?? true) events.push({ type: "dispatch-complete", at, batches, entries, dirs: o.dirs ?? 0 });
  return events;
}

/** Two workers joined and the WRITE content stage sent `batches` batches of 2 entries. */
function writing(batches: number, dirs = 0): MachineEvent[] {
  return [
    { type: "worker-state", at: 1, message: hello("w1") },
    { type: "worker-state", at: 2, message: hello("w2") },
    ...sent(0, batches, { dirs }),
  ];
}

describe("phase machine", () => {
  it("waits in INITIALIZING until the expected number of workers announced themselves", () => {
    const one = run([{ type: "worker-state", at: 1, message: hello("w1") }]);
    assert.equal(one.state.phase, "INITIALIZING");
    const two = run([{ type: "worker-state", at: 2, message: hello("w2") }], one.state);
    assert.equal(two.state.phase, "WRITE");
    assert.deepEqual(
      two.commands.filter((c) => c.type === "dispatch"),
      [{ type: "dispatch", phase: "WRITE", stage: "content", firstBatch: 0 }],
    );
  });

  it("lists the workers it has seen in INITIALIZING beacons, so they stop re-announcing", () => {
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "tick", at: 5_000 },
    ]);
    const beacon = r.commands.findLast((c) => c.type === "broadcast");
    assert.ok(beacon && beacon.type === "broadcast" && beacon.message.type === "MODE");
    assert.deepEqual(beacon.message.known, ["w1"]);
  });

  it("counts a re-announcing worker once", () => {
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "worker-state", at: 2, message: hello("w1") },
    ]);
    assert.equal(r.state.phase, "INITIALIZING");
    assert.equal(Object.keys(r.state.workers).length, 1);
  });

  it("does not end WRITE while the crawl is still sending, even when every sent batch is done", () => {
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "worker-state", at: 2, message: hello("w2") },
      ...sent(0, 1, { complete: false }),
      { type: "batches-sent", at: 3, batches: 1, entries: 2 },
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
    ]);
    assert.equal(r.state.phase, "WRITE");
    assert.equal(r.state.dispatch?.done, 1);
  });

  it("ends WRITE by counts and starts VALIDATE with the next batch numbers", () => {
    const r = run([
      ...writing(2),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
      { type: "summary", at: 5, message: summary("w2", [result(1, "WRITE")]) },
    ]);
    assert.equal(r.state.phase, "VALIDATE");
    assert.deepEqual(modes(r.commands), ["WRITE", "VALIDATE"]);
    assert.deepEqual(
      r.commands.findLast((c) => c.type === "dispatch"),
      {
        type: "dispatch",
        phase: "VALIDATE",
        stage: "content",
        firstBatch: 2,
      },
    );
    assert.equal(r.state.write.ok, 4);
    assert.equal(r.state.entries, 4);
  });

  it("sends directories in a last WRITE stage after all files are done", () => {
    const r = run([
      ...writing(1, 3),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
    ]);
    assert.equal(r.state.phase, "WRITE");
    assert.deepEqual(
      r.commands.findLast((c) => c.type === "dispatch"),
      {
        type: "dispatch",
        phase: "WRITE",
        stage: "dirs",
        firstBatch: 1,
      },
    );
    const after = run(
      [
        ...sent(1, 1, { per: 3, at: 5 }),
        { type: "summary", at: 6, message: summary("w2", [result(1, "WRITE", { ok: 3 })]) },
      ],
      r.state,
    );
    assert.equal(after.state.phase, "VALIDATE");
    assert.equal(after.state.entries, 5);
  });

  it("counts a redelivered batch once and notes the duplicate", () => {
    const r = run([
      ...writing(2),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
      { type: "summary", at: 5, message: summary("w2", [result(0, "WRITE", { receiveCount: 2 })]) },
    ]);
    assert.equal(r.state.write.ok, 2);
    assert.equal(r.state.duplicates, 1);
    assert.equal(r.state.phase, "WRITE");
  });

  it("counts a result that arrives after its batch was handed to SQS but before the send was acknowledged", () => {
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "worker-state", at: 2, message: hello("w2") },
      ...sent(0, 1, { complete: false }),
      { type: "summary", at: 3, message: summary("w1", [result(0, "WRITE", { receiveCount: 2 })]) },
      { type: "batches-sent", at: 4, batches: 1, entries: 2 },
      { type: "dispatch-complete", at: 4, batches: 1, entries: 2, dirs: 0 },
    ]);
    assert.equal(r.state.phase, "VALIDATE");
    assert.equal(r.state.redelivered, 1);
  });

  it("goes from VALIDATE to shutdown when nothing failed, and finishes when every worker stopped", () => {
    const r = run([
      ...writing(1),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
      ...sent(1, 1, { at: 5 }),
      { type: "summary", at: 6, message: summary("w2", [result(1, "VALIDATE")]) },
    ]);
    assert.equal(r.state.phase, "SHUTDOWN");
    assert.equal(r.state.outcome, "succeeded");
    assert.ok(types(r.commands).includes("broadcast:SHUTDOWN"));
    const end = run(
      [
        { type: "worker-state", at: 7, message: hello("w1", "STOPPED") },
        { type: "worker-state", at: 8, message: hello("w2", "STOPPED") },
      ],
      r.state,
    );
    assert.equal(end.state.finished, true);
    assert.ok(types(end.commands).includes("finish"));
    assert.ok(
      !types(end.commands).includes("remove-worker-queue"),
      "stopped workers removed their own queues",
    );
  });

  it("goes to ERROR_REPORT after VALIDATE when anything failed, then shuts down once every report is in", () => {
    const failedOne = result(0, "WRITE", {
      ok: 1,
      failed: 1,
      errors: [{ path: "a", reason: "permission denied" }],
    });
    const r = run([
      ...writing(1),
      { type: "summary", at: 4, message: summary("w1", [failedOne]) },
      ...sent(1, 1, { per: 1, at: 5 }),
      { type: "summary", at: 6, message: summary("w2", [result(1, "VALIDATE", { ok: 1 })]) },
    ]);
    assert.equal(r.state.phase, "ERROR_REPORT");
    assert.deepEqual(r.state.errors.toArray(), [{ path: "a", reason: "permission denied", phase: "WRITE" }]);
    const report = (worker: string, at: number): MachineEvent => ({
      type: "error-report",
      at,
      worker,
      errorsSent: 0,
      protocolErrors: 0,
      notes: [],
    });
    const one = run([report("w1", 7)], r.state);
    assert.equal(one.state.phase, "ERROR_REPORT");
    const both = run([report("w2", 8)], one.state);
    assert.equal(both.state.phase, "SHUTDOWN");
    assert.equal(both.state.outcome, "failed");
  });

  it("with failfast, stops the copy and purges the TOC queue at the first failure", () => {
    const s0 = initialState(RUN, { ...settings, failfast: true }, 0);
    const r = run(
      [
        { type: "worker-state", at: 1, message: hello("w1") },
        { type: "worker-state", at: 2, message: hello("w2") },
        ...sent(0, 5, { complete: false }),
        { type: "batches-sent", at: 3, batches: 5, entries: 10 },
        { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE", { ok: 1, failed: 1 })]) },
      ],
      s0,
    );
    assert.equal(r.state.phase, "ERROR_REPORT");
    assert.ok(types(r.commands).includes("stop-dispatch"));
    assert.ok(types(r.commands).includes("purge-toc"));
  });

  it("declares a silent worker lost, removes its queue and goes on with the others", () => {
    const r = run([
      ...writing(3),
      { type: "summary", at: 9_000, message: summary("w2", [result(0, "WRITE")]) },
      { type: "tick", at: 12_000 },
    ]);
    assert.equal(r.state.workers.w1?.state, "LOST");
    assert.equal(r.state.workers.w2?.state, "ACTIVE");
    assert.ok(
      r.commands.some((c) => c.type === "remove-worker-queue" && c.worker === "w1"),
      "the lost worker's control queue is removed",
    );
    assert.match(
      r.state.notes[0] ?? "",
      /worker w1 on h vanished in INITIALIZING: last heard of at .*, declared lost at .* in WRITE/,
    );
    assert.equal(r.state.phase, "WRITE");
  });

  it("fails cleanly when no worker is left for too long with work outstanding", () => {
    const r = run([...writing(3), { type: "tick", at: 11_000 }, { type: "tick", at: 42_000 }]);
    assert.equal(r.state.outcome, "failed");
    assert.match(r.state.failureReason ?? "", /no live worker for 30 s/);
    assert.equal(r.state.phase, "SHUTDOWN");
  });

  it("fails when no worker announced itself before the deadline, goes on with fewer if some did", () => {
    const none = run([{ type: "tick", at: 61_000 }]);
    assert.equal(none.state.outcome, "failed");
    assert.match(none.state.failureReason ?? "", /no worker announced itself/);
    const some = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "summary", at: 55_000, message: summary("w1", []) },
      { type: "tick", at: 61_000 },
    ]);
    assert.equal(some.state.phase, "WRITE");
    assert.match(some.state.notes[0] ?? "", /only 1 of 2 workers/);
  });

  it("on the first interrupt stops the run and tells the workers; on the second finishes at once", () => {
    const first = run([...writing(3), { type: "interrupt", at: 5 }]);
    assert.equal(first.state.phase, "SHUTDOWN");
    assert.equal(first.state.outcome, "interrupted");
    assert.deepEqual(
      types(first.commands).filter((t) => ["stop-dispatch", "purge-toc", "broadcast:SHUTDOWN"].includes(t)),
      ["stop-dispatch", "purge-toc", "broadcast:SHUTDOWN"],
    );
    const second = run([{ type: "interrupt", at: 6 }], first.state);
    assert.equal(second.state.finished, true);
    assert.equal(
      second.commands.filter((c) => c.type === "remove-worker-queue").length,
      2,
      "queues of workers that did not confirm are removed",
    );
  });

  it("records crawl issues as entries that failed or were skipped, with their reasons", () => {
    const r = run([
      ...writing(0),
      {
        type: "crawl-issue",
        at: 3,
        issue: { path: "fifo", reason: "special file (fifo): not copied" },
        outcome: "skipped",
        isEntry: true,
      },
      {
        type: "crawl-issue",
        at: 3,
        issue: { path: "locked", reason: "cannot list directory (EACCES)" },
        outcome: "failed",
        isEntry: false,
      },
    ]);
    assert.equal(r.state.entries, 1);
    assert.equal(r.state.write.skipped, 1);
    assert.equal(r.state.skipped.at(0)?.path, "fifo");
    assert.equal(r.state.errors.at(0)?.phase, "crawl");
  });

  it("reports every entry of a dead-lettered batch as failed and counts the batch done", () => {
    const r = run([
      ...writing(1),
      { type: "dead-lettered", at: 4, batch: 0, phase: "WRITE", paths: ["x", "y"], receiveCount: 5 },
    ]);
    assert.equal(r.state.write.failed, 2);
    assert.deepEqual(
      r.state.errors.toArray().map((e) => e.path),
      ["x", "y"],
    );
    assert.match(r.state.errors.at(0)?.reason ?? "", /dead-letter queue after 5 deliveries/);
    assert.equal(r.state.phase, "ERROR_REPORT", "no entry was written, so VALIDATE is skipped");
  });

  it("rebroadcasts the current mode on the beacon period", () => {
    const r = run([
      ...writing(3),
      { type: "tick", at: 500 },
      { type: "tick", at: 1_600 },
      { type: "tick", at: 2_700 },
    ]);
    assert.deepEqual(modes(r.commands), ["WRITE", "WRITE", "WRITE"]);
  });

  it("ignores everything after it finished", () => {
    const done = run([
      { type: "interrupt", at: 1 },
      { type: "interrupt", at: 2 },
    ]);
    assert.equal(done.state.finished, true);
    const after = step(done.state, { type: "worker-state", at: 3, message: hello("w9") });
    assert.equal(after.state, done.state);
    assert.deepEqual(after.commands, []);
  });
});

describe("phase machine against forged results", () => {
  it("does not let a result for a batch it never sent end a stage", () => {
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "worker-state", at: 2, message: hello("w2") },
      { type: "summary", at: 3, message: summary("w1", [result(99, "WRITE")]) },
      ...sent(0, 2, { at: 4 }),
      { type: "summary", at: 5, message: summary("w1", [result(0, "WRITE")]) },
    ]);
    assert.equal(r.state.phase, "WRITE", "batch 1 is still out");
    assert.equal(r.state.write.ok, 2, "only batch 0 counted");
    assert.equal(r.state.protocolErrors, 1);
    const late = run([{ type: "summary", at: 6, message: summary("w1", [result(98, "WRITE")]) }], r.state);
    assert.equal(late.state.protocolErrors, 2);
    assert.equal(late.state.phase, "WRITE");
  });
});

describe("the report", () => {
  it("counts every SQS request of the run: the master's and each worker's own last count", async () => {
    const { buildReport } = await import("../../master/report.ts");
    const r = run([...writing(1), { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) }]);
    const report = buildReport(r.state, {
      source: "/s",
      target: "/t",
      endedAtMs: 10,
      sqsRequests: 10,
      masterPeakRssBytes: 1,
    });
    assert.equal(report.delivery.masterSqsRequests, 10);
    assert.equal(report.delivery.sqsRequests, 13, "10 of the master, 3 reported by w1");
    assert.equal(report.delivery.sqsRequestsPerEntry, 13 / 2);
  });
});

function hook(worker: string, over: Partial<HookMessage> = {}): HookMessage {
  return {
    v: 1,
    run: RUN,
    type: "HOOK",
    worker,
    ok: true,
    exitCode: 0,
    signal: null,
    outputTail: "",
    durationMs: 1_200,
    ...over,
  };
}

const lastMode = (cs: Command[]) => {
  const m = cs.findLast((c) => c.type === "broadcast" && c.message.type === "MODE");
  assert.ok(m && m.type === "broadcast" && m.message.type === "MODE", "a MODE was broadcast");
  return m.message;
};

/** w1 and w2 joined, 3 WRITE batches sent, w1 silent until declared lost at 12 s (w2 kept talking). */
function withLostWorker() {
  return run([
    ...writing(3),
    { type: "summary", at: 9_000, message: summary("w2", [result(0, "WRITE")]) },
    { type: "tick", at: 12_000 },
  ]);
}

describe("phase machine: a worker declared lost comes back", () => {
  it("lists a lost worker in every MODE until it announces itself again", () => {
    const r = withLostWorker();
    assert.equal(r.state.workers.w1?.state, "LOST");
    const beacon = run([{ type: "tick", at: 13_500 }], r.state);
    assert.deepEqual(lastMode(beacon.commands).lost, ["w1"]);
  });

  it("takes back a lost worker that announces INITIALIZED with a new queue and subscription, and says so at once", () => {
    const lost = withLostWorker();
    const back = {
      ...hello("w1"),
      controlQueueUrl: "http://q/000000000000/w1-again",
      subscriptionArn: "arn:sub:w1-again",
    };
    const r = run([{ type: "worker-state", at: 12_500, message: back }], lost.state);
    const w1 = r.state.workers.w1;
    assert.equal(w1?.state, "ACTIVE");
    assert.equal(w1?.controlQueueUrl, "http://q/000000000000/w1-again");
    assert.equal(w1?.subscriptionArn, "arn:sub:w1-again");
    assert.equal(w1?.removed, false);
    assert.equal(w1?.rejoins, 1);
    assert.deepEqual(lastMode(r.commands).lost, [], "the acknowledgement no longer lists it");
    assert.ok(
      !r.commands.some((c) => c.type === "remove-worker-queue"),
      "its old queue was removed when it was declared lost, its new one is kept",
    );
    assert.match(r.state.notes.at(-1) ?? "", /worker w1 on h rejoined at .* after being declared lost at /);
    // At the end, the queue removed is the new one.
    const end = run(
      [
        { type: "interrupt", at: 13_000 },
        { type: "interrupt", at: 13_001 },
      ],
      r.state,
    );
    const removed = end.commands.flatMap((c) => (c.type === "remove-worker-queue" ? [c.queueUrl] : []));
    assert.ok(removed.includes("http://q/000000000000/w1-again"), removed.join(", "));
  });

  it("counts a lost worker's results for batches not yet counted, but keeps it lost until it announces itself", () => {
    const lost = withLostWorker();
    const r = run(
      [
        {
          type: "summary",
          at: 12_600,
          message: summary("w1", [result(0, "WRITE"), result(1, "WRITE", { ok: 1, unchanged: 1 })]),
        },
      ],
      lost.state,
    );
    assert.equal(r.state.write.ok, 3, "batch 1 counted (2 from batch 0 by w2, 1 from batch 1)");
    assert.equal(r.state.write.unchanged, 1);
    assert.equal(r.state.duplicates, 1, "batch 0 was counted already, from w2");
    assert.equal(r.state.workers.w1?.state, "LOST");
    const idle = run([{ type: "worker-state", at: 12_700, message: hello("w1", "IDLE") }], r.state);
    assert.equal(idle.state.workers.w1?.state, "LOST", "only INITIALIZED takes a worker back");
  });

  it("records the new queue of a known worker that announces one, and removes its old queue", () => {
    const r = run([
      ...writing(1),
      {
        type: "worker-state",
        at: 5,
        message: {
          ...hello("w2"),
          controlQueueUrl: "http://q/000000000000/w2-new",
          subscriptionArn: "arn:sub:w2-new",
        },
      },
    ]);
    assert.equal(r.state.workers.w2?.controlQueueUrl, "http://q/000000000000/w2-new");
    assert.deepEqual(
      r.commands.filter((c) => c.type === "remove-worker-queue"),
      [
        {
          type: "remove-worker-queue",
          worker: "w2",
          queueUrl: "http://q/000000000000/w2",
          subscriptionArn: "arn:sub:w2",
        },
      ],
    );
  });
});

describe("phase machine: results in parts", () => {
  const issue = (p: string) => ({ path: p, reason: "permission denied" });
  /** Batch 0 of 3 entries: 3 failed, its errors split over `of` parts. */
  const part = (index: number, of: number, errors: string[], over: Partial<BatchResult> = {}) =>
    result(0, "WRITE", {
      ok: 0,
      failed: 3,
      bytes: 0,
      errors: errors.map(issue),
      part: { index, of },
      ...over,
    });

  it("counts a result in parts once every part of the same worker and delivery is in, with every part's errors", () => {
    const r = run([...writing(1), { type: "summary", at: 4, message: summary("w1", [part(1, 2, ["c"])]) }]);
    assert.equal(r.state.write.failed, 0, "not counted on one part of two");
    assert.equal(Object.keys(r.state.parts).length, 1);
    const done = run([{ type: "summary", at: 5, message: summary("w1", [part(0, 2, ["a", "b"])]) }], r.state);
    assert.equal(done.state.write.failed, 3);
    assert.deepEqual(
      done.state.errors.toArray().map((e) => e.path),
      ["c", "a", "b"],
    );
    assert.deepEqual(done.state.parts, {}, "nothing of the batch is held once it is counted");
    assert.equal(done.state.phase, "ERROR_REPORT");
  });

  it("counts a batch once whatever the parts and redeliveries: a repeated part, a second delivery, a whole result", () => {
    const r = run([
      ...writing(1),
      { type: "summary", at: 4, message: summary("w1", [part(0, 2, ["a", "b"])]) },
      { type: "summary", at: 5, message: summary("w1", [part(0, 2, ["a", "b"])]) },
      { type: "summary", at: 6, message: summary("w2", [part(0, 2, ["a", "b"], { receiveCount: 2 })]) },
      { type: "summary", at: 7, message: summary("w2", [part(1, 2, ["c"], { receiveCount: 2 })]) },
      { type: "summary", at: 8, message: summary("w1", [part(1, 2, ["c"])]) },
      { type: "summary", at: 9, message: summary("w1", [result(0, "WRITE", { failed: 3, ok: 0 })]) },
    ]);
    assert.equal(r.state.write.failed, 3);
    assert.equal(r.state.errors.length, 3);
    assert.equal(r.state.redelivered, 1, "counted from the second delivery");
    assert.equal(r.state.duplicates, 3, "the repeated part, w1's last part and its whole result");
    assert.deepEqual(r.state.parts, {});
  });

  it("refuses forged or inconsistent parts as protocol errors, and still counts the batch from its true parts", () => {
    const r = run([
      ...writing(1),
      { type: "summary", at: 4, message: summary("w1", [part(0, 2, ["a", "b"])]) },
      { type: "summary", at: 5, message: summary("w1", [part(2, 2, ["x"])]) },
      { type: "summary", at: 5, message: summary("w1", [part(1, 2, ["c"], { failed: 4 })]) },
      { type: "summary", at: 5, message: summary("w1", [part(1, 2, ["c", "d"])]) },
      { type: "summary", at: 5, message: summary("w1", [part(1, 3, ["c"])]) },
      {
        type: "summary",
        at: 5,
        message: summary("w1", [result(0, "WRITE", { ok: 0, failed: 3, part: { index: 1, of: 1 } })]),
      },
      { type: "summary", at: 6, message: summary("w1", [part(1, 2, ["c"])]) },
    ]);
    assert.equal(
      r.state.protocolErrors,
      5,
      "past the end, other counts, too many errors, other length, 1 of 1",
    );
    assert.equal(r.state.write.failed, 3);
    assert.deepEqual(
      r.state.errors.toArray().map((e) => e.path),
      ["a", "b", "c"],
    );
  });

  it("drops every held part of a batch once it is counted, by another worker's whole result or a dead letter", () => {
    const r = run([
      ...writing(2).slice(0, 2),
      { type: "batches-issued", at: 3, first: 0, batches: 2, entries: 6 },
      { type: "summary", at: 4, message: summary("w1", [part(0, 2, ["a", "b"])]) },
      { type: "summary", at: 4, message: summary("w1", [{ ...part(0, 2, ["a", "b"]), batch: 1 }]) },
      { type: "summary", at: 5, message: summary("w2", [result(0, "WRITE", { ok: 3 })]) },
      { type: "dead-lettered", at: 6, batch: 1, phase: "WRITE", paths: ["p", "q", "r"], receiveCount: 5 },
    ]);
    assert.deepEqual(r.state.parts, {});
    assert.equal(r.state.write.ok, 3);
    assert.equal(r.state.write.failed, 3);
  });
});

describe("phase machine: the before-VALIDATE hook", () => {
  /** Both workers joined, WRITE done (1 batch), VALIDATE sent 2 batches (1 and 2). */
  const validating = () =>
    run([
      ...writing(1),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
      ...sent(1, 2, { per: 1, at: 5 }),
    ]);

  it("reports a failed hook as an error naming the worker, its exit code and its last lines; the run cannot succeed", () => {
    const v = validating();
    assert.equal(v.state.phase, "VALIDATE");
    const output = ["mounting", "", "fuse: device not found", "mount failed", "try again"].join("\n");
    const r = run(
      [
        { type: "hook", at: 6, message: hook("w1", { ok: false, exitCode: 3, outputTail: output }) },
        { type: "hook", at: 6, message: hook("w2") },
        {
          type: "summary",
          at: 7,
          message: summary("w2", [result(1, "VALIDATE", { ok: 1 }), result(2, "VALIDATE", { ok: 1 })]),
        },
      ],
      v.state,
    );
    const hookErrors = r.state.errors.toArray().filter((e) => e.phase === "hook");
    assert.equal(hookErrors.length, 1);
    assert.equal(hookErrors[0]?.path, "(hook on w1)");
    assert.match(
      hookErrors[0]?.reason ?? "",
      /^before-VALIDATE hook on worker w1 \(h\) failed: exit code 3 after 1\.2 s; last output: mounting \| fuse: device not found \| mount failed \| try again$/,
    );
    assert.equal(r.state.workers.w1?.hook?.ok, false);
    assert.equal(r.state.workers.w2?.hook?.ok, true);
    assert.equal(r.state.validate.ok, 2, "the other worker's checks count");
    assert.equal(r.state.phase, "ERROR_REPORT", "a failed hook is a failure of the run");
    assert.equal(r.state.outcome, "failed");
  });

  it("names the signal of a hook that was killed, and counts a repeated failure once", () => {
    const r = run(
      [
        { type: "hook", at: 6, message: hook("w1", { ok: false, exitCode: null, signal: "SIGKILL" }) },
        { type: "hook", at: 7, message: hook("w1", { ok: false, exitCode: null, signal: "SIGKILL" }) },
      ],
      validating().state,
    );
    assert.equal(r.state.errors.length, 1);
    assert.match(r.state.errors.at(0)?.reason ?? "", /failed: killed by SIGKILL after 1\.2 s; no output/);
  });

  it("fails the run at once when every live worker's hook failed and VALIDATE batches are outstanding", () => {
    const one = run(
      [{ type: "hook", at: 6, message: hook("w1", { ok: false, exitCode: 1 }) }],
      validating().state,
    );
    assert.equal(one.state.phase, "VALIDATE", "w2 has not reported its hook: it may still validate");
    const both = run([{ type: "hook", at: 7, message: hook("w2", { ok: false, exitCode: 1 }) }], one.state);
    assert.equal(both.state.phase, "SHUTDOWN");
    assert.equal(both.state.outcome, "failed");
    assert.match(
      both.state.failureReason ?? "",
      /^no worker can validate: the before-VALIDATE hook failed on every live worker \(w1, w2\); 2 batches outstanding \(2 entries\): 1-2$/,
    );
    assert.ok(types(both.commands).includes("purge-toc"));
    assert.ok(types(both.commands).includes("broadcast:SHUTDOWN"));
  });

  it("fails at once too when every hook failed before VALIDATE handed out any batch", () => {
    const r = run([
      ...writing(1),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
      { type: "hook", at: 5, message: hook("w1", { ok: false, exitCode: 1 }) },
      { type: "hook", at: 5, message: hook("w2", { ok: false, exitCode: 1 }) },
    ]);
    assert.equal(r.state.phase, "SHUTDOWN");
    assert.match(r.state.failureReason ?? "", /\(w1, w2\); no batch of VALIDATE content handed out yet$/);
  });

  it("does not give up on VALIDATE while a live worker's hook succeeded, nor because of a lost worker's hook", () => {
    const r = run(
      [
        { type: "hook", at: 6, message: hook("w2") },
        { type: "hook", at: 6, message: hook("w1", { ok: false, exitCode: 2 }) },
      ],
      validating().state,
    );
    assert.equal(r.state.phase, "VALIDATE");
    // w2 goes silent and is declared lost: the only live worker left has a failed hook.
    const later = run(
      [
        { type: "summary", at: 9_000, message: summary("w1", []) },
        { type: "tick", at: 11_000 },
      ],
      r.state,
    );
    assert.equal(later.state.workers.w2?.state, "LOST");
    assert.equal(later.state.phase, "SHUTDOWN", "w1 alone cannot validate");
  });

  it("takes VALIDATE results from workers that sent no HOOK (no hook configured): only a failed hook is an error", () => {
    const r = run(
      [
        {
          type: "summary",
          at: 7,
          message: summary("w1", [result(1, "VALIDATE", { ok: 1 }), result(2, "VALIDATE", { ok: 1 })]),
        },
      ],
      validating().state,
    );
    assert.equal(r.state.phase, "SHUTDOWN");
    assert.equal(r.state.outcome, "succeeded");
  });
});

describe("phase machine: the stall limit", () => {
  // Workers that keep their heartbeats but finish nothing: only the stall limit can end the wait.
  const patient = initialState(RUN, { ...settings, workerTimeoutMs: 1e9, noWorkersTimeoutMs: 1e9 }, 0);

  it("fails the run when no batch result came for the stall limit with batches outstanding, and names them", () => {
    const r = run(
      [
        ...writing(5),
        { type: "summary", at: 50_000, message: summary("w1", [result(0, "WRITE"), result(2, "WRITE")]) },
        { type: "summary", at: 90_000, message: summary("w2", []) },
        { type: "summary", at: 90_000, message: { ...summary("w1", []), inFlight: 2 } },
        { type: "tick", at: 149_000 },
      ],
      patient,
    );
    assert.equal(r.state.phase, "WRITE", "99 s since the last result: within the limit");
    const stalled = run([{ type: "tick", at: 150_001 }], r.state);
    assert.equal(stalled.state.phase, "SHUTDOWN");
    assert.equal(stalled.state.outcome, "failed");
    assert.equal(
      stalled.state.failureReason,
      "stalled: no batch result for 100 s in WRITE content; 3 batches outstanding (6 entries): 1, 3-4; " +
        "held by w1 on h (2, last heard of 1970-01-01T00:01:30.000Z)",
    );
    assert.ok(types(stalled.commands).includes("purge-toc"));
    assert.ok(types(stalled.commands).includes("stop-dispatch"));
    assert.ok(stalled.state.notes.includes(stalled.state.failureReason ?? ""));
  });

  it("does not run the stall clock while nothing is outstanding (a slow crawl), and starts it when work is handed out", () => {
    const r = run(
      [
        { type: "worker-state", at: 1, message: hello("w1") },
        { type: "worker-state", at: 2, message: hello("w2") },
        { type: "summary", at: 150_000, message: summary("w1", []) },
        { type: "summary", at: 150_000, message: summary("w2", []) },
        { type: "tick", at: 200_000 },
        ...sent(0, 1, { at: 200_000, complete: false }),
        { type: "summary", at: 290_000, message: summary("w1", []) },
        { type: "summary", at: 290_000, message: summary("w2", []) },
        { type: "tick", at: 299_000 },
      ],
      patient,
    );
    assert.equal(r.state.phase, "WRITE");
    const stalled = run([{ type: "tick", at: 300_001 }], r.state);
    assert.equal(stalled.state.phase, "SHUTDOWN");
    assert.match(
      stalled.state.failureReason ?? "",
      /1 batch outstanding \(2 entries\): 0; no live worker says it holds one \(/,
    );
  });

  it("keeps the identity of the report when the run stalls before the crawl ended", async () => {
    const { buildReport } = await import("../../master/report.ts");
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "worker-state", at: 2, message: hello("w2") },
      ...sent(0, 3, { complete: false }),
      {
        type: "summary",
        at: 4,
        message: summary("w1", [
          result(0, "WRITE", { ok: 1, skipped: 1, skips: [{ path: "s", reason: "r" }] }),
        ]),
      },
      { type: "tick", at: 100_005 },
    ]);
    assert.equal(r.state.outcome, "failed");
    const report = buildReport(r.state, {
      source: "/s",
      target: "/t",
      endedAtMs: 1,
      sqsRequests: 0,
      masterPeakRssBytes: 0,
    });
    const { ok, unchanged, failed, skipped } = report.write;
    assert.equal(report.entries, 6);
    assert.equal(report.notAttempted, 4);
    assert.equal(ok + unchanged + failed + skipped + report.notAttempted, report.entries);
  });
});

describe("phase machine: entries accounted for when a run ends early", () => {
  it("counts the directories the crawl found as entries, though the run ended before their stage", async () => {
    const { buildReport } = await import("../../master/report.ts");
    const r = run([
      ...writing(2, 3),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE")]) },
      { type: "tick", at: 100_005 },
    ]);
    assert.match(
      r.state.failureReason ?? "",
      /^stalled: .* 1 batch outstanding \(2 entries\): 1; no live worker says it holds one \(/,
    );
    const report = buildReport(r.state, {
      source: "/s",
      target: "/t",
      endedAtMs: 1,
      sqsRequests: 0,
      masterPeakRssBytes: 0,
    });
    assert.equal(report.entries, 7, "4 files and 3 directories");
    assert.equal(report.write.ok, 2);
    assert.equal(report.notAttempted, 5);
  });
});

describe("phase machine: batch numbers", () => {
  it("refuses a result for a batch not handed to SQS yet, even inside the stage's eventual range", () => {
    const r = run([
      { type: "worker-state", at: 1, message: hello("w1") },
      { type: "worker-state", at: 2, message: hello("w2") },
      ...sent(0, 2, { complete: false }),
      { type: "summary", at: 4, message: summary("w1", [result(2, "WRITE"), result(0, "WRITE")]) },
    ]);
    assert.equal(r.state.protocolErrors, 1);
    assert.equal(r.state.dispatch?.done, 1);
    const rest = run(
      [
        { type: "batches-issued", at: 5, first: 2, batches: 1, entries: 2 },
        { type: "dispatch-complete", at: 5, batches: 3, entries: 6, dirs: 0 },
        { type: "summary", at: 6, message: summary("w2", [result(1, "WRITE"), result(2, "WRITE")]) },
      ],
      r.state,
    );
    assert.equal(rest.state.phase, "VALIDATE", "the true result of batch 2 ends the stage");
    assert.equal(rest.state.write.ok, 6);
  });

  it("numbers every stage after the one before: dirs and VALIDATE never reuse a number", () => {
    const r = run([
      ...writing(2, 1),
      { type: "summary", at: 4, message: summary("w1", [result(0, "WRITE"), result(1, "WRITE")]) },
    ]);
    assert.deepEqual(
      r.commands.findLast((c) => c.type === "dispatch"),
      {
        type: "dispatch",
        phase: "WRITE",
        stage: "dirs",
        firstBatch: 2,
      },
    );
    const v = run(
      [
        ...sent(2, 1, { per: 1 }),
        { type: "summary", at: 5, message: summary("w1", [result(2, "WRITE", { ok: 1 })]) },
      ],
      r.state,
    );
    assert.deepEqual(
      v.commands.findLast((c) => c.type === "dispatch"),
      {
        type: "dispatch",
        phase: "VALIDATE",
        stage: "content",
        firstBatch: 3,
      },
    );
    const late = run([{ type: "summary", at: 6, message: summary("w2", [result(1, "VALIDATE")]) }], v.state);
    assert.equal(late.state.duplicates, 1, "a number of WRITE is never a VALIDATE batch");
    assert.equal(late.state.validate.ok, 0);
  });

  it("on resume starts above every earlier number, and takes results and dead letters below it as stale", () => {
    const s0 = initialState(RUN, settings, 0, { startedAtMs: 0, firstBatch: 1_000_000, note: "resumed" });
    const r = run(
      [
        ...writing(0).slice(0, 2),
        ...sent(1_000_000, 1),
        { type: "summary", at: 4, message: summary("w1", [result(7, "WRITE")]) },
        { type: "dead-lettered", at: 4, batch: 8, phase: "WRITE", paths: ["a"], receiveCount: 5 },
        { type: "dead-lettered", at: 4, batch: 1_000_001, phase: "WRITE", paths: ["b"], receiveCount: 5 },
      ],
      s0,
    );
    assert.deepEqual(
      r.commands.find((c) => c.type === "dispatch"),
      {
        type: "dispatch",
        phase: "WRITE",
        stage: "content",
        firstBatch: 1_000_000,
      },
    );
    assert.equal(r.state.staleResults, 2);
    assert.equal(r.state.write.failed, 0);
    assert.equal(r.state.protocolErrors, 1, "a dead letter for a batch never sent");
    assert.match(
      r.state.notes.at(-1) ?? "",
      /protocol error in the dead-letter queue: dead letter for batch 1000001/,
    );
  });
});

describe("phase machine: the error list", () => {
  it("keeps 200,000 errors in one growing list: no step copies the errors before it", () => {
    const s0 = run(writing(400)).state;
    let s = s0;
    let copies = 0;
    for (let b = 0; b < 400; b++) {
      const errors = Array.from({ length: 500 }, (_, i) => ({ path: `d/${b}/${i}`, reason: "EACCES" }));
      const next = step(s, {
        type: "summary",
        at: 10 + b,
        message: summary(b % 2 ? "w1" : "w2", [result(b, "WRITE", { ok: 0, failed: 500, errors })]),
      }).state;
      if (b > 0 && !next.errors.sharesStorageWith(s.errors)) copies++;
      s = next;
    }
    assert.equal(s.errors.length, 200_000);
    assert.equal(s.write.failed, 200_000);
    assert.equal(copies, 0);
    assert.equal(s.errors.at(199_999)?.path, "d/399/499");
    assert.equal(s0.errors.length, 0, "the earlier state keeps its own (empty) list");
  });
});
