import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BatchResult, SummaryMessage, WorkerStateMessage } from "../../core/messages.ts";
import {
  type Command,
  initialState,
  type MachineEvent,
  type MachineSettings,
  type MachineState,
  step,
} from "../../master/phase-machine.ts";

const settings: MachineSettings = {
  expectedWorkers: 2,
  failfast: false,
  beaconMs: 1_000,
  initTimeoutMs: 60_000,
  workerTimeoutMs: 10_000,
  noWorkersTimeoutMs: 30_000,
  stallTimeoutMs: 100_000,
  errorReportTimeoutMs: 5_000,
  shutdownTimeoutMs: 5_000,
};

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
