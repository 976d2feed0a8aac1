import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type BatchResult,
  decodeMessage,
  encodeMessage,
  type MessageBody,
  type Phase,
} from "../../core/messages.ts";
import {
  type Command,
  initialSession,
  mayTake,
  type SessionEvent,
  type SessionSettings,
  type SessionState,
  step,
} from "../../worker/session.ts";

const RUN = "run-1";
const ME = "w1";
const settings: SessionSettings = {
  workerId: ME,
  hasHook: false,
  masterTimeoutMs: 60_000,
  rejoinGraceMs: 10_000,
  foreignPauseMs: 2_000,
  interruptionDrainMs: 90_000,
};

function control(body: MessageBody, at = 1_000, id = `c${at}`, run = RUN): SessionEvent {
  const raw = encodeMessage(run, body);
  return {
    type: "control",
    at,
    startedAt: at - 100,
    items: [{ id, decoded: decodeMessage(raw, { accept: ["MODE", "SHUTDOWN"] }) }],
  };
}

function mode(
  phase: Phase,
  at = 1_000,
  o: { known?: string[]; lost?: string[]; sentAtMs?: number; run?: string } = {},
): SessionEvent {
  return control(
    {
      type: "MODE",
      phase,
      known: o.known ?? [],
      ...(o.lost ? { lost: o.lost } : {}),
      failfast: false,
      sentAtMs: o.sentAtMs ?? at,
    },
    at,
    `m${at}-${phase}`,
    o.run,
  );
}

function tocRaw(
  body: string,
  receipt: string,
  at = 1_000,
  id = receipt,
  expectRun: string = RUN,
): SessionEvent {
  return {
    type: "toc",
    at,
    items: [
      { id, receipt, receiveCount: 1, decoded: decodeMessage(body, { expectRun, accept: ["TOC_BATCH"] }) },
    ],
  };
}

function batch(
  n: number,
  phase: "WRITE" | "VALIDATE",
  receipt = `r${n}`,
  at = 1_000,
  run = RUN,
): SessionEvent {
  const body = encodeMessage(run, {
    type: "TOC_BATCH",
    phase,
    stage: "content",
    batch: n,
    entries: [["a.txt", "f", 1, "0"]],
  });
  return tocRaw(body, receipt, at);
}

function result(n: number, phase: "WRITE" | "VALIDATE", over: Partial<BatchResult> = {}): BatchResult {
  return {
    batch: n,
    phase,
    ok: 1,
    failed: 0,
    skipped: 0,
    unchanged: 0,
    bytes: 1,
    receiveCount: 1,
    errors: [],
    skips: [],
    ...over,
  };
}

/** Runs events from the initial state; returns the last state and every command, and the last step's. */
function run(events: SessionEvent[], s: Partial<SessionSettings> = {}, runId: string | null = RUN) {
  const start = initialSession({ ...settings, ...s }, 0, runId);
  let state: SessionState = start.state;
  const all: Command[] = [...start.commands];
  let last: Command[] = start.commands;
  for (const e of events) {
    const r = step(state, e);
    state = r.state;
    last = r.commands;
    all.push(...r.commands);
  }
  return { state, all, last };
}

const types = (cs: Command[]) => cs.map((c) => c.type).filter((t) => t !== "log");
const of = <T extends Command["type"]>(cs: Command[], t: T) =>
  cs.filter((c): c is Extract<Command, { type: T }> => c.type === t);

/** A worker in WRITE, listed by the master. */
const inWrite = [mode("INITIALIZING", 500, { known: [ME] }), mode("WRITE", 1_000)];

describe("worker session: joining", () => {
  it("announces itself at once when its run is given, and not before a MODE when it is not", () => {
    assert.deepEqual(types(initialSession(settings, 0, RUN).commands), ["announce"]);
    assert.deepEqual(types(initialSession(settings, 0, null).commands), []);
  });

  it("joins the run of the first MODE it hears and announces until the master lists it", () => {
    const r = run([mode("INITIALIZING", 500)], {}, null);
    assert.equal(r.state.runId, RUN);
    assert.equal(r.state.seen, false);
    assert.deepEqual(types(r.last), ["announce"]);
    const listed = run([mode("INITIALIZING", 500), mode("INITIALIZING", 900, { known: [ME] })], {}, null);
    assert.equal(listed.state.seen, true);
    assert.deepEqual(types(listed.last), []);
  });

  it("joins a run already in WRITE as a late joiner: announces once and may take WRITE batches", () => {
    const r = run([mode("WRITE", 1_000)]);
    assert.equal(r.state.seen, true);
    assert.deepEqual(types(r.last), ["announce"]);
    assert.equal(mayTake(r.state, 1_000), "WRITE");
    assert.deepEqual(types(run([mode("WRITE", 1_000), mode("WRITE", 2_000)]).last), []);
  });

  it("ignores a mode older than one already seen, but never an INITIALIZING (a restarted master)", () => {
    const stale = run([...inWrite, mode("VALIDATE", 2_000), mode("WRITE", 2_500, { sentAtMs: 1_500 })]);
    assert.equal(stale.state.mode, "VALIDATE");
    const restarted = run([...inWrite, mode("INITIALIZING", 3_000, { sentAtMs: 10 })]);
    assert.equal(restarted.state.mode, "INITIALIZING");
    assert.deepEqual(types(restarted.last), ["announce", "final-summary"]);
  });

  it("counts a control message of another run or one it cannot decode once, and acts on neither", () => {
    const foreign = mode("SHUTDOWN", 2_000, { run: "other-run" });
    const r = run([...inWrite, foreign, foreign]);
    assert.equal(r.state.protocolErrors, 1);
    assert.equal(r.state.mode, "WRITE");
    const junk: SessionEvent = {
      type: "control",
      at: 2_000,
      startedAt: 1_900,
      items: [{ id: "j", decoded: decodeMessage("not json", { accept: ["MODE"] }) }],
    };
    assert.equal(run([...inWrite, junk, junk]).state.protocolErrors, 1);
  });
});

describe("worker session: batches", () => {
  it("runs a WRITE batch of its run and holds it until its result is sent, then deletes it", () => {
    const taken = run([...inWrite, batch(1, "WRITE")]);
    assert.deepEqual(types(taken.last), ["run-batch"]);
    assert.equal(taken.state.held.r1?.status, "running");
    const done = step(taken.state, {
      type: "batch-done",
      at: 2_000,
      receipt: "r1",
      result: result(1, "WRITE"),
    });
    assert.deepEqual(types(done.commands), ["report"]);
    assert.equal(done.state.held.r1?.status, "reporting");
    assert.equal(done.state.totals.WRITE.ok, 1);
    const sent = step(done.state, { type: "results-sent", at: 2_100, receipts: ["r1"] });
    assert.deepEqual(of(sent.commands, "delete")[0]?.receipts, ["r1"]);
    assert.deepEqual(sent.state.held, {});
  });

  it("does not delete a message whose result it never sent", () => {
    const r = run([
      ...inWrite,
      batch(1, "WRITE"),
      { type: "results-sent", at: 2_000, receipts: ["r1", "nope"] },
    ]);
    assert.deepEqual(types(r.last), []);
    assert.equal(r.state.held.r1?.status, "running");
  });

  it("counts the errors it hands over, for ERROR_REPORT", () => {
    const errors = [{ path: "a", reason: "x" }];
    const r = run([
      ...inWrite,
      batch(1, "WRITE"),
      {
        type: "batch-done",
        at: 2_000,
        receipt: "r1",
        result: result(1, "WRITE", { ok: 0, failed: 1, errors }),
      },
    ]);
    assert.equal(r.state.errorsQueued, 1);
  });

  it("puts another run's TOC message back at once, counts it once, and looks less often for a while", () => {
    const foreign = batch(7, "WRITE", "f1", 1_500, "run-0");
    const r = run([...inWrite, foreign, foreign]);
    assert.deepEqual(
      of(r.all, "release").map((c) => c.receipts),
      [["f1"], ["f1"]],
    );
    assert.equal(r.state.foreignReleased, 2);
    assert.equal(r.state.protocolErrors, 1, "one message, counted once");
    assert.equal(mayTake(r.state, 4_000), null, "the second time in a row pauses twice as long");
    assert.equal(mayTake(r.state, 5_600), "WRITE");
    assert.ok(!r.all.some((c) => c.type === "delete"), "never deleted");
  });

  it("leaves an undecodable TOC message and a control message on the TOC queue to the redrive, counted once", () => {
    const junk = tocRaw("not json at all", "j1");
    const shutdown = tocRaw(encodeMessage(RUN, { type: "SHUTDOWN", reason: "forged" }), "s1");
    const r = run([...inWrite, junk, junk, shutdown]);
    assert.equal(r.state.protocolErrors, 2);
    assert.deepEqual(types(r.all.slice(-3)), [], "neither deleted, nor released, nor acted on");
    assert.equal(r.state.end, null);
  });

  it("gives back a batch abandoned by its runner", () => {
    const r = run([...inWrite, batch(1, "WRITE"), { type: "batch-abandoned", at: 2_000, receipt: "r1" }]);
    assert.deepEqual(of(r.last, "release")[0]?.receipts, ["r1"]);
    assert.deepEqual(r.state.held, {});
  });

  it("sends a FINAL summary of the phase the master left", () => {
    const r = run([...inWrite, mode("VALIDATE", 2_000)]);
    assert.deepEqual(of(r.last, "final-summary")[0]?.phase, "WRITE");
  });
});

describe("worker session: the before-VALIDATE hook", () => {
  const hook = { hasHook: true };

  it("runs the hook on entering VALIDATE only once no WRITE batch is being written", () => {
    const r = run([...inWrite, batch(1, "WRITE"), mode("VALIDATE", 2_000)], hook);
    assert.ok(!r.last.some((c) => c.type === "run-hook"), "not while a WRITE batch runs");
    assert.equal(mayTake(r.state, 2_000), null);
    const done = step(r.state, { type: "batch-done", at: 2_500, receipt: "r1", result: result(1, "WRITE") });
    assert.deepEqual(types(done.commands), ["report", "run-hook"]);
    assert.equal(done.state.hook, "running");
  });

  it("puts back a VALIDATE batch that comes before the hook has run", () => {
    const r = run([...inWrite, batch(2, "VALIDATE")], hook);
    assert.deepEqual(types(r.last), ["release"]);
    assert.deepEqual(r.state.held, {});
  });

  it("after a successful hook sends HOOK ok and takes VALIDATE batches", () => {
    const r = run(
      [
        ...inWrite,
        mode("VALIDATE", 2_000),
        {
          type: "hook-done",
          at: 3_000,
          outcome: { ok: true, exitCode: 0, signal: null, outputTail: "", durationMs: 900 },
        },
      ],
      hook,
    );
    const sent = of(r.last, "send")[0]?.body;
    assert.equal(sent?.type, "HOOK");
    assert.equal(sent?.type === "HOOK" && sent.ok, true);
    assert.equal(mayTake(r.state, 3_000), "VALIDATE");
  });

  for (const [how, outcome, says] of [
    [
      "exits non-zero",
      { exitCode: 3, signal: null, outputTail: "mount: busy\n" },
      /exited with 3: mount: busy/,
    ],
    ["is killed by a signal", { exitCode: null, signal: "SIGKILL", outputTail: "" }, /was killed by SIGKILL/],
    [
      "cannot be spawned",
      { exitCode: null, signal: null, outputTail: "spawn ENOENT" },
      /could not start: spawn ENOENT/,
    ],
  ] as const) {
    it(`a hook that ${how} sends HOOK not ok with what it said, and the worker takes no VALIDATE batch`, () => {
      const r = run(
        [
          ...inWrite,
          mode("VALIDATE", 2_000),
          { type: "hook-done", at: 3_000, outcome: { ok: false, durationMs: 10, ...outcome } },
        ],
        hook,
      );
      const sent = of(r.last, "send")[0]?.body;
      assert.ok(sent?.type === "HOOK" && !sent.ok);
      assert.equal(sent.exitCode, outcome.exitCode);
      assert.equal(sent.signal, outcome.signal);
      assert.equal(sent.outputTail, outcome.outputTail);
      assert.match(r.state.notes[0] ?? "", says);
      assert.equal(mayTake(r.state, 3_000), null, "does not even look for VALIDATE batches");
      const offered = step(r.state, batch(5, "VALIDATE", "v5", 3_100));
      assert.deepEqual(types(offered.commands), ["release"]);
      assert.deepEqual(offered.state.held, {});
    });
  }

  it("runs the hook before any check when the first mode it hears is VALIDATE (a resume)", () => {
    const r = run([mode("VALIDATE", 1_000)], hook);
    assert.deepEqual(types(r.last), ["announce", "run-hook"]);
    assert.equal(mayTake(r.state, 1_000), null);
  });

  it("needs the hook again when the master goes back to WRITE after it ran", () => {
    const ok = { ok: true, exitCode: 0, signal: null, outputTail: "", durationMs: 1 };
    const r = run(
      [
        ...inWrite,
        mode("VALIDATE", 2_000),
        { type: "hook-done", at: 2_500, outcome: ok },
        mode("WRITE", 3_000),
      ],
      hook,
    );
    assert.equal(r.state.hook, "pending");
  });
});

describe("worker session: the error report and the end", () => {
  it("sends ERROR_REPORT once no batch runs, behind the results it has handed over", () => {
    const errors = [{ path: "a", reason: "x" }];
    const r = run([...inWrite, batch(1, "WRITE"), mode("ERROR_REPORT", 2_000)]);
    assert.ok(!r.last.some((c) => c.type === "send"), "not while a batch runs");
    const done = step(r.state, {
      type: "batch-done",
      at: 2_500,
      receipt: "r1",
      result: result(1, "WRITE", { ok: 0, failed: 1, errors }),
    });
    assert.deepEqual(types(done.commands), ["report", "send"]);
    const body = of(done.commands, "send")[0]?.body;
    assert.ok(body?.type === "ERROR_REPORT");
    assert.equal(body.errorsSent, 1);
  });

  it("on SHUTDOWN gives up the work in hand and ends with exit code 0", () => {
    const r = run([...inWrite, batch(1, "WRITE"), control({ type: "SHUTDOWN", reason: "done" }, 2_000)]);
    assert.deepEqual(types(r.last), ["abort-work", "end"]);
    assert.equal(r.state.end?.exitCode, 0);
  });

  it("on a first signal takes nothing new, drains and ends with 130 once every held batch is reported", () => {
    const r = run([...inWrite, batch(1, "WRITE"), { type: "stop", at: 2_000, reason: "SIGTERM" }]);
    assert.equal(r.state.end, null);
    assert.equal(mayTake(r.state, 2_000), null);
    assert.deepEqual(types(step(r.state, batch(2, "WRITE", "r2", 2_100)).commands), ["release"]);
    const done = step(r.state, { type: "batch-done", at: 2_500, receipt: "r1", result: result(1, "WRITE") });
    assert.equal(done.state.end, null, "its result is not sent yet");
    const sent = step(done.state, { type: "results-sent", at: 2_600, receipts: ["r1"] });
    assert.deepEqual(types(sent.commands), ["delete", "end"]);
    assert.equal(sent.state.end?.exitCode, 130);
  });

  it("on a second signal puts back every batch it holds and ends at once", () => {
    const r = run([
      ...inWrite,
      batch(1, "WRITE"),
      batch(2, "WRITE"),
      { type: "abort", at: 2_000, reason: "again" },
    ]);
    assert.deepEqual(types(r.last), ["abort-work", "end", "release"]);
    assert.deepEqual(of(r.last, "release")[0]?.receipts, ["r1", "r2"]);
  });

  it("puts back TOC messages that arrive after it ended", () => {
    const r = run([
      ...inWrite,
      control({ type: "SHUTDOWN", reason: "done" }, 2_000),
      batch(3, "WRITE", "r3", 2_100),
    ]);
    assert.deepEqual(of(r.last, "release")[0]?.receipts, ["r3"]);
  });
});

describe("worker session: dropped by the master, and a master gone", () => {
  const gone: SessionEvent = {
    type: "control-failed",
    at: 5_000,
    startedAt: 4_900,
    gone: true,
    error: "QueueDoesNotExist",
  };

  it("rejoins when its control queue is gone, keeping its batches and results", () => {
    const r = run([...inWrite, batch(1, "WRITE"), gone]);
    assert.deepEqual(types(r.last), ["rejoin"]);
    assert.equal(r.state.control, "rejoining");
    assert.equal(r.state.held.r1?.status, "running", "what it holds stays held");
    const back = step(r.state, { type: "rejoined", at: 5_500, queueUrl: "http://q/w1-r1" });
    assert.deepEqual(types(back.commands), ["announce"]);
    assert.equal(back.state.takenBack, false);
  });

  it("rejoins when a MODE lists it lost, then only announces again while the master has not taken it back", () => {
    const r = run([...inWrite, mode("WRITE", 5_000, { lost: [ME] })]);
    assert.deepEqual(types(r.last), ["rejoin"]);
    const back = step(r.state, { type: "rejoined", at: 5_500, queueUrl: "http://q/w1-r1" }).state;
    const still = step(back, mode("WRITE", 6_000, { lost: [ME] }));
    assert.deepEqual(types(still.commands), ["announce"], "within the grace: no second rejoin");
    const taken = step(still.state, mode("WRITE", 7_000, { lost: [] }));
    assert.equal(taken.state.takenBack, true);
    const later = step(taken.state, mode("WRITE", 30_000, { lost: [ME] }));
    assert.deepEqual(types(later.commands), ["rejoin"], "past the grace it rejoins again");
  });

  it("retries a failed rejoin a little later", () => {
    const r = run([...inWrite, gone, { type: "rejoin-failed", at: 5_100, error: "ECONNREFUSED" }]);
    assert.deepEqual(types(step(r.state, { type: "tick", at: 6_000 }).commands), []);
    assert.deepEqual(types(step(r.state, { type: "tick", at: 7_200 }).commands), ["rejoin"]);
  });

  it("only logs a control receive that failed for another reason", () => {
    const r = run([
      ...inWrite,
      { type: "control-failed", at: 5_000, startedAt: 4_900, gone: false, error: "ECONNRESET" },
    ]);
    assert.deepEqual(types(r.last), []);
    assert.equal(r.state.control, "listening");
  });

  it("with no MODE for the bound, puts back what it holds, leaves and ends with exit code 1", () => {
    const r = run([
      ...inWrite,
      batch(1, "WRITE"),
      { type: "control", at: 61_500, startedAt: 61_100, items: [] },
      { type: "tick", at: 61_600 },
    ]);
    assert.deepEqual(types(r.last), ["abort-work", "end", "release"]);
    assert.deepEqual(of(r.last, "release")[0]?.receipts, ["r1"]);
    assert.equal(r.state.end?.exitCode, 1);
    assert.match(r.state.end?.reason ?? "", /no word from the master for 60 s/);
  });

  it("after a freeze, waits for a poll begun past the bound before it judges the master gone", () => {
    // Frozen from 1,100 to 90,000: the poll in flight began before the bound ran out.
    const thawed = run([...inWrite, { type: "tick", at: 90_000 }]);
    assert.equal(thawed.state.end, null);
    const heard = step(thawed.state, mode("WRITE", 90_500));
    assert.equal(step(heard.state, { type: "tick", at: 91_000 }).state.end, null);
  });

  it("gives the master a fresh bound after a rejoin", () => {
    const r = run([
      ...inWrite,
      { type: "control-failed", at: 90_000, startedAt: 1_100, gone: true, error: "gone" },
      { type: "rejoined", at: 90_100, queueUrl: "http://q/new" },
      { type: "control", at: 92_200, startedAt: 90_200, items: [] },
      { type: "tick", at: 92_300 },
    ]);
    assert.equal(r.state.end, null);
  });
});
