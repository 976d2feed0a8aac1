/** The phase machine and a worker's goodbye: one drained by a Spot interruption is counted drained, not lost. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BatchResult, StopReason, SummaryMessage, WorkerStateMessage } from "../../core/messages.ts";
import {
  type Command,
  initialState,
  type MachineEvent,
  type MachineState,
  step,
} from "../../master/phase-machine.ts";
import { buildReport } from "../../master/report.ts";
import { machineSettings as settings } from "../helpers/machine.ts";

const RUN = "run-1";

const state = (
  worker: string,
  s: WorkerStateMessage["state"],
  goodbye?: { reason: StopReason; detail?: string },
): WorkerStateMessage => ({
  v: 1,
  run: RUN,
  type: "WORKER_STATE",
  worker,
  state: s,
  host: `host-${worker}`,
  pid: 1,
  concurrency: 4,
  controlQueueUrl: `http://q/000000000000/${worker}`,
  subscriptionArn: `arn:sub:${worker}`,
  ...(goodbye ?? {}),
});
const result = (batch: number): BatchResult => ({
  batch,
  phase: "WRITE",
  ok: 2,
  failed: 0,
  skipped: 0,
  unchanged: 0,
  bytes: 10,
  receiveCount: 1,
  errors: [],
  skips: [],
});
const summary = (worker: string, batches: BatchResult[]): SummaryMessage => {
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
};
const ev = (at: number, message: WorkerStateMessage | SummaryMessage): MachineEvent =>
  message.type === "SUMMARY" ? { type: "summary", at, message } : { type: "worker-state", at, message };

/** Two workers in WRITE with batches 0-3 sent. */
const writing: MachineEvent[] = [
  ev(1, state("w1", "INITIALIZED")),
  ev(2, state("w2", "INITIALIZED")),
  { type: "batches-issued", at: 3, first: 0, batches: 4, entries: 8 },
  { type: "dispatch-complete", at: 3, batches: 4, entries: 8, dirs: 0 },
];
const spotGoodbye = {
  reason: "spot interruption",
  detail: "spot interruption: drained, every batch it held finished and reported",
} as const;

function run(events: MachineEvent[]) {
  let s: MachineState = initialState(RUN, settings, 0);
  const commands: Command[] = [];
  for (const e of events) {
    const r = step(s, e);
    s = r.state;
    commands.push(...r.commands);
  }
  return { state: s, commands };
}

describe("phase machine: a worker drained by a Spot interruption", () => {
  const drained = [
    ...writing,
    ev(10, summary("w2", [result(0)])),
    ev(11, state("w2", "STOPPED", spotGoodbye)),
  ];

  it("is counted stopped with its reason, never lost, and its queue is left to it", () => {
    const r = run([...drained, { type: "tick", at: 30_000 }]);
    const w2 = r.state.workers.w2;
    assert.equal(w2?.state, "STOPPED");
    assert.equal(w2?.stopped?.reason, "spot interruption");
    assert.equal(w2?.lostAtMs, undefined);
    assert.ok(!r.commands.some((c) => c.type === "remove-worker-queue" && c.worker === "w2"));
    assert.equal(
      r.state.notes.filter((n) =>
        /worker w2 on host-w2 drained .* in WRITE after a Spot interruption notice: spot interruption: drained/.test(
          n,
        ),
      ).length,
      1,
    );
  });

  it("leaves the rest of the stage to the other worker, and its results stand", () => {
    const r = run([...drained, ev(12, summary("w1", [result(1), result(2), result(3)]))]);
    assert.equal(r.state.phase, "VALIDATE");
    assert.equal(r.state.write.ok, 8);
    assert.equal(r.state.duplicates, 0);
  });

  it("notes a repeated goodbye once", () => {
    const r = run([...drained, ev(12, state("w2", "STOPPED", spotGoodbye))]);
    assert.equal(r.state.notes.filter((n) => n.includes("Spot interruption")).length, 1);
  });

  it("keeps the reason of another goodbye without a note", () => {
    const r = run([
      ...writing,
      ev(11, state("w2", "STOPPED", { reason: "signal", detail: "stopped by signal" })),
    ]);
    assert.equal(r.state.workers.w2?.stopped?.reason, "signal");
    assert.equal(r.state.workers.w2?.drain, undefined, "a signal's goodbye is no drain");
    assert.deepEqual(r.state.notes, []);
  });

  it("shows in the report which worker was drained and why, and which was lost", () => {
    const r = run([...drained, { type: "tick", at: 12_000 }]);
    const report = buildReport(r.state, {
      source: "/src",
      target: "/dst",
      endedAtMs: 13_000,
      sqsRequests: 0,
      masterPeakRssBytes: 0,
    });
    const byId = Object.fromEntries(report.workers.map((w) => [w.id, w]));
    assert.equal(byId.w2?.stopped?.reason, "spot interruption");
    assert.equal(byId.w2?.drainedAt, byId.w2?.stopped?.at, "drained when it said goodbye");
    assert.equal(byId.w2?.lostAt, null);
    assert.equal(byId.w1?.state, "LOST", "w1 fell silent past the worker timeout");
    assert.equal(byId.w1?.stopped, null);
  });
});
