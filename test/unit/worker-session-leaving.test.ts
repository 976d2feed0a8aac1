/** The worker session after a Spot interruption notice: an event in, commands out, no mocks. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type BatchResult, decodeMessage, encodeMessage, type MessageBody } from "../../core/messages.ts";
import {
  type Command,
  initialSession,
  mayTake,
  type SessionEvent,
  type SessionSettings,
  type SessionState,
  step,
} from "../../worker/session.ts";
import { INTERRUPTION_MARGIN_MS } from "../../worker/session-leaving.ts";

const RUN = "run-1";
const ME = "w1";
const settings: SessionSettings = {
  workerId: ME,
  hasHook: false,
  masterTimeoutMs: 600_000,
  rejoinGraceMs: 10_000,
  foreignPauseMs: 2_000,
  interruptionDrainMs: 110_000,
};

const mode = (phase: "INITIALIZING" | "WRITE" | "VALIDATE", at: number): SessionEvent => {
  const body: MessageBody = { type: "MODE", phase, known: [ME], failfast: false, sentAtMs: at };
  const decoded = decodeMessage(encodeMessage(RUN, body), { accept: ["MODE", "SHUTDOWN"] });
  return { type: "control", at, startedAt: at - 100, items: [{ id: `m${at}`, decoded }] };
};
const toc = (n: number, at: number, phase: "WRITE" | "VALIDATE" = "WRITE"): SessionEvent => {
  const body = encodeMessage(RUN, {
    type: "TOC_BATCH",
    phase,
    stage: "content",
    batch: n,
    entries: [["a.txt", "f", 1, "0"]],
  });
  const decoded = decodeMessage(body, { expectRun: RUN, accept: ["TOC_BATCH"] });
  return { type: "toc", at, items: [{ id: `t${n}`, receipt: `r${n}`, receiveCount: 1, decoded }] };
};
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
const done = (n: number, at: number): SessionEvent => ({
  type: "batch-done",
  at,
  receipt: `r${n}`,
  result: result(n),
});
const sent = (at: number, ...n: number[]): SessionEvent => ({
  type: "results-sent",
  at,
  receipts: n.map((x) => `r${x}`),
});
const notice = (at: number, takenAtMs: number | null = at + 120_000): SessionEvent => ({
  type: "interruption",
  at,
  notice: { action: "terminate", takenAtMs },
});
const tick = (at: number): SessionEvent => ({ type: "tick", at });

/** In WRITE with batches 1 and 2 in hand. */
const holdingTwo = [mode("INITIALIZING", 100), mode("WRITE", 200), toc(1, 300), toc(2, 400)];

function run(events: SessionEvent[]) {
  let state: SessionState = initialSession(settings, 0, RUN).state;
  let last: Command[] = [];
  const all: Command[] = [];
  for (const e of events) {
    const r = step(state, e);
    state = r.state;
    last = r.commands;
    all.push(...r.commands);
  }
  return { state, last, all };
}
const types = (cs: Command[]) => cs.map((c) => c.type).filter((t) => t !== "log");
const released = (cs: Command[]) =>
  cs.flatMap((c) => (c.type === "release" ? c.receipts.map((r) => `${r} (${c.why})`) : []));

describe("worker session: a Spot interruption notice", () => {
  const table: {
    name: string;
    events: SessionEvent[];
    /** Non-log commands of the last event. */
    last: string[];
    end: { why: string; exitCode: number } | null;
    held: string[];
    released?: string[];
  }[] = [
    {
      name: "mid-WRITE it takes no new batch and keeps working the two in hand",
      events: [...holdingTwo, notice(1_000)],
      last: [],
      end: null,
      held: ["r1", "r2"],
    },
    {
      name: "a batch that arrives after the notice is put back at once",
      events: [...holdingTwo, notice(1_000), toc(3, 1_100)],
      last: ["release"],
      end: null,
      held: ["r1", "r2"],
      released: ["r3 (the worker is stopping)"],
    },
    {
      name: "the batches in hand finish, are reported, then deleted: the session ends drained, exit 0",
      events: [...holdingTwo, notice(1_000), done(1, 2_000), done(2, 3_000), sent(3_500, 1, 2)],
      last: ["delete", "end"],
      end: { why: "interrupted", exitCode: 0 },
      held: [],
    },
    {
      name: "nothing in hand: it ends at once",
      events: [mode("INITIALIZING", 100), mode("WRITE", 200), notice(1_000)],
      last: ["end"],
      end: { why: "interrupted", exitCode: 0 },
      held: [],
    },
    {
      name: "before the bound, a tick changes nothing",
      events: [...holdingTwo, notice(1_000), tick(1_000 + 120_000 - INTERRUPTION_MARGIN_MS - 1)],
      last: [],
      end: null,
      held: ["r1", "r2"],
    },
    {
      name: "at the bound (20 s before EC2 takes the instance) a running batch is given up and put back, a finished one stays until it is reported",
      events: [...holdingTwo, notice(1_000), done(1, 2_000), tick(1_000 + 120_000 - INTERRUPTION_MARGIN_MS)],
      last: ["abort-work", "end", "release"],
      end: { why: "interrupted", exitCode: 0 },
      held: ["r1"],
      released: ["r2 (spot interruption)"],
    },
    {
      name: "after the bound, the finished batch's results are sent and it is deleted: not redone",
      events: [
        ...holdingTwo,
        notice(1_000),
        done(1, 2_000),
        tick(1_000 + 120_000 - INTERRUPTION_MARGIN_MS),
        sent(102_000, 1),
      ],
      last: ["delete"],
      end: { why: "interrupted", exitCode: 0 },
      held: [],
    },
    {
      name: "a notice without a time is bounded by --spot-drain-sec",
      events: [...holdingTwo, notice(1_000, null), tick(1_000 + 110_000)],
      last: ["abort-work", "end", "release"],
      end: { why: "interrupted", exitCode: 0 },
      held: [],
      released: ["r1 (spot interruption)", "r2 (spot interruption)"],
    },
    {
      name: "a notice heard late (the time almost past) puts back what is held at the next tick",
      events: [...holdingTwo, notice(1_000, 5_000), tick(1_500)],
      last: ["abort-work", "end", "release"],
      end: { why: "interrupted", exitCode: 0 },
      held: [],
      released: ["r1 (spot interruption)", "r2 (spot interruption)"],
    },
    {
      name: "a second notice changes nothing",
      events: [...holdingTwo, notice(1_000), notice(6_000, 6_000)],
      last: [],
      end: null,
      held: ["r1", "r2"],
    },
    {
      name: "after a signal's stop, a notice still bounds the drain",
      events: [
        ...holdingTwo,
        { type: "stop", at: 900, reason: "stopped by signal" },
        notice(1_000),
        tick(1_000 + 120_000 - INTERRUPTION_MARGIN_MS),
      ],
      last: ["abort-work", "end", "release"],
      end: { why: "interrupted", exitCode: 0 },
      held: [],
      released: ["r1 (spot interruption)", "r2 (spot interruption)"],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const r = run(row.events);
      assert.deepEqual(types(r.last), row.last);
      assert.deepEqual(r.state.end && { why: r.state.end.why, exitCode: r.state.end.exitCode }, row.end);
      assert.deepEqual(Object.keys(r.state.held).sort(), row.held);
      if (row.released) assert.deepEqual(released(r.last), row.released);
    });
  }

  it("takes no batch of either phase once it has heard the notice", () => {
    const before = run(holdingTwo).state;
    assert.equal(mayTake(before, 1_000), "WRITE");
    const after = run([...holdingTwo, notice(1_000)]).state;
    assert.equal(mayTake(after, 1_000), null);
    assert.equal(after.interruption?.drainUntilMs, 1_000 + 120_000 - INTERRUPTION_MARGIN_MS);
    assert.equal(after.stopping, "spot interruption");
  });

  it("in VALIDATE, waits for its before-VALIDATE hook only until the bound", () => {
    let state: SessionState = initialSession({ ...settings, hasHook: true }, 0, RUN).state;
    const feed = (e: SessionEvent) => {
      const r = step(state, e);
      state = r.state;
      return r.commands;
    };
    feed(mode("INITIALIZING", 100));
    assert.deepEqual(types(feed(mode("VALIDATE", 200))), ["run-hook"]);
    assert.deepEqual(types(feed(notice(1_000, null))), []);
    assert.equal(state.end, null, "the hook is still running");
    assert.deepEqual(types(feed(tick(110_999))), []);
    assert.deepEqual(types(feed(tick(111_000))), ["abort-work", "end"]);
    assert.equal((state as SessionState).end?.why, "interrupted");
  });

  it("says in its end what it did: drained, or put back at the bound", () => {
    const drained = run([...holdingTwo, notice(1_000), done(1, 2_000), done(2, 3_000), sent(3_500, 1, 2)]);
    assert.match(drained.state.end?.reason ?? "", /^spot interruption: drained/);
    const cut = run([...holdingTwo, notice(1_000, null), tick(111_000)]);
    assert.match(cut.state.end?.reason ?? "", /^spot interruption: put back 2 unfinished batch\(es\)/);
  });
});
