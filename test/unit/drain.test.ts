/**
 * Draining a worker, at both ends: the master's phase machine lists it in MODE until it says goodbye and
 * counts it drained, not lost; the worker's session takes nothing new, finishes what it holds, and ends with 0.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type BatchResult,
  decodeMessage,
  encodeMessage,
  type MessageBody,
  type WorkerStateMessage,
} from "../../core/messages.ts";
import {
  type Command,
  initialState,
  type MachineEvent,
  type MachineState,
  step,
} from "../../master/phase-machine.ts";
import { buildReport } from "../../master/report.ts";
import {
  initialSession,
  mayTake,
  type Command as SessionCommand,
  type SessionEvent,
  type SessionState,
  step as sessionStep,
} from "../../worker/session.ts";
import { machineSettings as settings } from "../helpers/machine.ts";

const RUN = "run-1";

function hello(worker: string, state: WorkerStateMessage["state"] = "INITIALIZED"): WorkerStateMessage {
  return {
    v: 1,
    run: RUN,
    type: "WORKER_STATE",
    worker,
    state,
    host: `host-${worker}`,
    pid: 1,
    concurrency: 4,
    controlQueueUrl: `http://q/000000000000/${worker}`,
    subscriptionArn: `arn:sub:${worker}`,
  };
}

function machine(events: MachineEvent[], s0: MachineState = initialState(RUN, settings, 0)) {
  let state = s0;
  const commands: Command[] = [];
  for (const e of events) {
    const r = step(state, e);
    state = r.state;
    commands.push(...r.commands);
  }
  return { state, commands };
}

const lastMode = (cs: Command[]) => {
  const b = cs.findLast((c) => c.type === "broadcast" && c.message.type === "MODE");
  return b?.type === "broadcast" && b.message.type === "MODE" ? b.message : undefined;
};

const writing: MachineEvent[] = [
  { type: "worker-state", at: 1, message: hello("w1") },
  { type: "worker-state", at: 2, message: hello("w2") },
  { type: "batches-issued", at: 3, first: 0, batches: 4, entries: 8, bytes: 80 },
];

describe("draining a worker: the master's side", () => {
  it("lists the drained worker in a MODE sent at once, and in every beacon until it says goodbye", () => {
    const r = machine([
      ...writing,
      { type: "drain", at: 10, workers: ["w2"], reason: "ahead of the deadline" },
    ]);
    assert.deepEqual(lastMode(r.commands)?.drain, ["w2"]);
    assert.equal(r.state.lastBeaconMs, 10, "sent at once");
    assert.equal(r.state.workers.w2?.drain?.requestedAtMs, 10);
    const beacon = machine([{ type: "tick", at: 1_100 }], r.state);
    assert.deepEqual(lastMode(beacon.commands)?.drain, ["w2"]);
    assert.equal(r.state.dispatch?.bytesIssued, 80, "the bytes handed out are counted for the forecast");
  });

  it("counts a drained worker that says goodbye as drained, not lost, and the run goes on with the others", () => {
    const r = machine([
      ...writing,
      { type: "drain", at: 10, workers: ["w2"], reason: "ahead of the deadline" },
      { type: "worker-state", at: 20, message: hello("w2", "STOPPED") },
      { type: "tick", at: 30_000 },
    ]);
    const w2 = r.state.workers.w2;
    assert.equal(w2?.state, "STOPPED");
    assert.equal(w2?.drain?.doneAtMs, 20);
    assert.equal(w2?.lostAtMs, undefined);
    assert.equal(r.state.phase, "WRITE");
    assert.equal(lastMode(r.commands)?.drain, undefined, "no longer listed once gone");
    assert.ok(
      r.state.notes.some((n) => /worker w2 on host-w2 drained in WRITE \(ahead of the deadline\)/.test(n)),
    );
    const report = buildReport(r.state, {
      source: "/s",
      target: "/t",
      endedAtMs: 30_000,
      sqsRequests: 0,
      masterPeakRssBytes: 0,
    });
    assert.equal(report.workers.find((w) => w.id === "w2")?.drainedAt, "1970-01-01T00:00:00.020Z");
    assert.equal(report.workers.find((w) => w.id === "w1")?.drainedAt, undefined);
  });

  it("does not drain a worker it does not know, or one lost already", () => {
    const r = machine([
      ...writing,
      { type: "tick", at: 10_500 }, // w1 and w2 silent since 1-2 ms: both lost
      { type: "drain", at: 10_600, workers: ["w1", "nobody"], reason: "ahead" },
    ]);
    assert.equal(r.state.workers.w1?.drain, undefined);
    assert.equal(lastMode(r.commands.slice(-3))?.drain, undefined);
    assert.deepEqual(r.commands.filter((c) => c.type === "log" && /not draining/.test(c.message)).length, 2);
  });
});

const ME = "w1";

function control(body: MessageBody, at: number): SessionEvent {
  return {
    type: "control",
    at,
    startedAt: at - 100,
    items: [
      { id: `c${at}`, decoded: decodeMessage(encodeMessage(RUN, body), { accept: ["MODE", "SHUTDOWN"] }) },
    ],
  };
}

const mode = (
  phase: "INITIALIZING" | "WRITE",
  at: number,
  extra: { known?: string[]; drain?: string[] } = {},
) =>
  control(
    {
      type: "MODE",
      phase,
      known: extra.known ?? [],
      ...(extra.drain ? { drain: extra.drain } : {}),
      failfast: false,
      sentAtMs: at,
    },
    at,
  );

function batch(n: number, at: number): SessionEvent {
  const body = encodeMessage(RUN, {
    type: "TOC_BATCH",
    phase: "WRITE",
    stage: "content",
    batch: n,
    entries: [["a.txt", "f", 1, "0"]],
  });
  return {
    type: "toc",
    at,
    items: [
      {
        id: `t${n}`,
        receipt: `r${n}`,
        receiveCount: 1,
        decoded: decodeMessage(body, { expectRun: RUN, accept: ["TOC_BATCH"] }),
      },
    ],
  };
}

const result = (n: number): BatchResult => ({
  batch: n,
  phase: "WRITE",
  ok: 1,
  failed: 0,
  skipped: 0,
  unchanged: 0,
  bytes: 1,
  receiveCount: 1,
  errors: [],
  skips: [],
});

function session(events: SessionEvent[]) {
  const start = initialSession(
    {
      workerId: ME,
      hasHook: false,
      masterTimeoutMs: 60_000,
      rejoinGraceMs: 10_000,
      foreignPauseMs: 2_000,
      interruptionDrainMs: 90_000,
    },
    0,
    RUN,
  );
  let state: SessionState = start.state;
  let last: SessionCommand[] = start.commands;
  for (const e of events) {
    const r = sessionStep(state, e);
    state = r.state;
    last = r.commands;
  }
  return { state, last };
}

const types = (cs: SessionCommand[]) => cs.map((c) => c.type).filter((t) => t !== "log");

describe("draining a worker: the worker's side", () => {
  const inWrite = [mode("INITIALIZING", 500, { known: [ME] }), mode("WRITE", 1_000)];

  it("a MODE that lists another worker to drain changes nothing here", () => {
    const r = session([...inWrite, batch(1, 1_100), mode("WRITE", 2_000, { drain: ["w2"] })]);
    assert.equal(r.state.stopping, null);
    assert.notEqual(mayTake(r.state, 2_000), null);
  });

  it("drained, it takes nothing new, finishes and reports what it holds, and ends with 0", () => {
    const r = session([...inWrite, batch(1, 1_100), mode("WRITE", 2_000, { drain: [ME] })]);
    assert.equal(r.state.end, null, "it still holds batch 1");
    assert.equal(mayTake(r.state, 2_000), null);
    const late = sessionStep(r.state, batch(2, 2_100));
    assert.deepEqual(
      types(late.commands),
      ["release"],
      "a batch received after the drain is put back at once",
    );
    const done = sessionStep(late.state, { type: "batch-done", at: 2_500, receipt: "r1", result: result(1) });
    assert.deepEqual(types(done.commands), ["report"]);
    assert.equal(done.state.end, null, "not before its result is sent");
    const sent = sessionStep(done.state, { type: "results-sent", at: 2_600, receipts: ["r1"] });
    assert.deepEqual(types(sent.commands), ["delete", "end"]);
    assert.deepEqual(sent.state.end, {
      why: "stopped",
      reason: "the master drains this worker",
      exitCode: 0,
    });
  });
});
