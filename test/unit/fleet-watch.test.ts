/**
 * The fleet as an observer of the phase machine, over an in-memory fleet: the machine's states decide which
 * instance carries which worker, which instances are ended, and what is launched or drained.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../core/log.ts";
import type { WorkerStateMessage } from "../../core/messages.ts";
import type { Fleet, FleetInstance } from "../../core/ports.ts";
import { type FleetSizing, FleetWatch } from "../../master/fleet-watch.ts";
import { initialState, type MachineEvent, type MachineState, step } from "../../master/phase-machine.ts";
import { machineSettings as settings } from "../helpers/machine.ts";

/** EC2 in memory: what was launched and terminated, and what describe lists. */
class MemoryFleet implements Fleet {
  readonly up = new Map<string, FleetInstance>();
  readonly terminated: string[] = [];
  readonly launches: number[] = [];
  private next = 0;
  async launch(count: number): Promise<FleetInstance[]> {
    this.launches.push(count);
    const out: FleetInstance[] = [];
    for (let k = 0; k < count; k++) {
      const i: FleetInstance = { id: `i-${this.next++}`, state: "running" };
      this.up.set(i.id, i);
      out.push(i);
    }
    return out;
  }
  async describe(): Promise<FleetInstance[]> {
    return [...this.up.values()];
  }
  async terminate(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      this.up.delete(id);
      this.terminated.push(id);
    }
  }
}

const hello = (worker: string, state: WorkerStateMessage["state"] = "INITIALIZED"): WorkerStateMessage => ({
  v: 1,
  run: "r",
  type: "WORKER_STATE",
  worker,
  state,
  host: `${worker}.ec2.internal`,
  pid: 1,
  concurrency: 4,
  controlQueueUrl: `http://q/000000000000/${worker}`,
  subscriptionArn: `arn:sub:${worker}`,
});

/** A watch over an in-memory fleet, its machine driven by the test; the clock is the test's. */
async function setUp(o: { sizing?: FleetSizing; count?: number } = {}) {
  const fleet = new MemoryFleet();
  let now = 0;
  const emitted: MachineEvent[] = [];
  const watch = new FleetWatch({
    fleet,
    tags: {},
    initTimeoutMs: 10_000,
    pollMs: 1,
    log: createLogger("json", {}, () => {}),
    sizing: o.sizing ?? null,
    now: () => now,
  });
  watch.attach((e) => emitted.push(e));
  watch.add(await fleet.launch(o.count ?? 2), 0);
  let state: MachineState = initialState("r", settings, 0);
  const feed = (e: MachineEvent) => {
    state = step(state, e).state;
    watch.observe(state, e);
  };
  /** One poll of the watch at time `at`. */
  const poll = async (at: number) => {
    now = at;
    const ctl = new AbortController();
    const running = watch.run(ctl.signal);
    await new Promise((r) => setTimeout(r, 20));
    ctl.abort();
    await running;
  };
  return { fleet, watch, emitted, feed, poll, state: () => state };
}

describe("the fleet, observing the phase machine", () => {
  it("matches workers to instances from the machine's announcements, and ends an instance that stays silent", async () => {
    const t = await setUp();
    t.feed({ type: "worker-state", at: 1, message: hello("i-0") });
    await t.poll(5_000);
    assert.deepEqual(t.fleet.terminated, []);
    await t.poll(11_000);
    assert.deepEqual(t.fleet.terminated, ["i-1"], "i-1 never announced a worker");
    assert.deepEqual(t.watch.endedBy("silent"), ["i-1"]);
    assert.match(t.watch.notes[0] ?? "", /i-1 did not announce a worker within 10 s/);
  });

  it("ends the instance of a worker the machine declared lost, and fails the run once no instance is left", async () => {
    const t = await setUp({ count: 1 });
    t.feed({ type: "worker-state", at: 1, message: hello("i-0") });
    t.feed({ type: "tick", at: 20_000 }); // silent for 10 s: lost
    assert.equal(t.state().workers["i-0"]?.state, "LOST");
    await t.poll(20_001);
    assert.deepEqual(t.fleet.terminated, ["i-0"]);
    assert.deepEqual(t.watch.endedBy("lost"), ["i-0"]);
    await t.poll(20_002);
    const fatal = t.emitted.filter((e) => e.type === "fatal");
    assert.equal(fatal.length, 1, "said once");
    assert.match(fatal[0]?.type === "fatal" ? fatal[0].reason : "", /every worker instance has ended/);
  });

  it("counts an instance whose worker drained as drained, even when it powered off by itself first", async () => {
    const t = await setUp();
    t.feed({ type: "worker-state", at: 1, message: hello("i-0") });
    t.feed({ type: "worker-state", at: 2, message: hello("i-1") });
    t.feed({ type: "drain", at: 3, workers: ["i-1"], reason: "ahead" });
    t.fleet.up.delete("i-1"); // powered off after its goodbye
    t.feed({ type: "worker-state", at: 4, message: hello("i-1", "STOPPED") });
    await t.poll(5);
    assert.deepEqual(t.watch.endedBy("drained"), ["i-1"]);
    assert.deepEqual(t.fleet.terminated, [], "nothing left to terminate");
    assert.deepEqual(t.emitted, [], "the run goes on with i-0");
  });

  it("counts a worker that said goodbye after the last poll as drained once the run ends, and one lost as lost", async () => {
    const t = await setUp({ count: 3 });
    for (const [k, id] of ["i-0", "i-1", "i-2"].entries())
      t.feed({ type: "worker-state", at: 1 + k, message: hello(id) });
    t.feed({ type: "drain", at: 3, workers: ["i-1"], reason: "ahead" });
    await t.poll(4);
    assert.deepEqual(t.watch.endedBy("drained"), [], "asked, not done yet");
    t.feed({ type: "worker-state", at: 5, message: hello("i-1", "STOPPED") });
    t.watch.settle();
    assert.deepEqual(t.watch.endedBy("drained"), ["i-1"]);
    assert.deepEqual(t.watch.endedBy("lost"), []);
    assert.deepEqual(t.fleet.terminated, [], "settling terminates nothing");
    const u = await setUp({ count: 1 });
    u.feed({ type: "worker-state", at: 1, message: hello("i-0") });
    u.feed({ type: "tick", at: 20_000 });
    u.watch.settle();
    assert.deepEqual(u.watch.endedBy("lost"), ["i-0"]);
  });

  it("counts the instance of a worker that drained on a Spot interruption notice as drained, not lost, and terminates it", async () => {
    const t = await setUp();
    t.feed({ type: "worker-state", at: 1, message: hello("i-0") });
    t.feed({ type: "worker-state", at: 2, message: hello("i-1") });
    t.feed({
      type: "worker-state",
      at: 4,
      message: {
        ...hello("i-1", "STOPPED"),
        reason: "spot interruption",
        detail: "spot interruption: drained",
      },
    });
    await t.poll(5);
    assert.deepEqual(t.watch.endedBy("drained"), ["i-1"]);
    assert.deepEqual(t.watch.endedBy("lost"), []);
    assert.deepEqual(t.fleet.terminated, ["i-1"], "still up after its goodbye: terminated");
    assert.deepEqual(t.emitted, [], "the run goes on with i-0");
  });

  it("with a deadline it launches when behind, and records each decision in the timeline", async () => {
    const sizing: FleetSizing = {
      deadlineMs: 100_000,
      budgetDollars: null,
      maxWorkers: 6,
      instancePerHour: 0.1,
      requestDollarsPerEntry: 0,
      bootSec: 0,
    };
    const t = await setUp({ sizing, count: 1 });
    t.feed({ type: "worker-state", at: 1, message: hello("i-0") });
    t.feed({ type: "worker-state", at: 60_000, message: hello("i-0", "IDLE") });
    t.feed({ type: "tick", at: 60_001 }); // past the init timeout: WRITE with the one worker
    t.feed({ type: "batches-issued", at: 60_002, first: 0, batches: 100, entries: 1_000 });
    t.feed({ type: "dispatch-complete", at: 60_003, batches: 100, entries: 1_000, dirs: 0 });
    assert.equal(t.state().phase, "WRITE");
    await t.poll(60_010); // the busy clock starts
    const done = (n: number, at: number) => {
      const w = { ok: n, failed: 0, skipped: 0, unchanged: 0, bytes: n };
      const e = { ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0 };
      t.feed({
        type: "summary",
        at,
        message: {
          v: 1,
          run: "r",
          type: "SUMMARY",
          worker: "i-0",
          kind: "CURRENT",
          phase: "WRITE",
          totals: { WRITE: w, VALIDATE: e },
          batches: [],
          inFlight: 0,
          rssBytes: 1,
          sqsRequests: 0,
          protocolErrors: 0,
        },
      });
    };
    done(40, 64_010);
    // 40 entries in 4 s: 10 entries/s. 960 writes and 1,000 checks left in 36 s need 54.5/s: 6 workers.
    await t.poll(64_010);
    assert.deepEqual(t.fleet.launches, [1, 5]);
    const row = t.watch.timeline.find((r) => r.action.startsWith("launch"));
    assert.equal(row?.action, "launch 5");
    assert.equal(row?.workers, 6);
    assert.match(
      row?.reason ?? "",
      /^1 workers end at .*, after the deadline 1970-01-01T00:01:40Z; 6 end at /,
    );
    assert.equal(t.watch.live(64_010).workers, 6);
  });
});
