/**
 * The running fleet, as an observer of the phase machine: which instance carries which worker comes from the
 * workers' announcements the machine took; whether a worker lives is the machine's word (lost, drained, gone).
 * Every poll it describes the instances, ends those that will not work (silent past the init timeout, their
 * worker lost or drained), sizes the fleet to the deadline or the budget (fleet-sizing.ts), and fails the run
 * when no instance is left.
 */
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Tally } from "../core/messages.ts";
import type { Fleet, FleetInstance } from "../core/ports.ts";
import { pause } from "../core/retry.ts";
import { decide, type MeasuredWorker, type SizingDecision } from "./fleet-sizing.ts";
import type { MachineEvent, MachineState, WorkerView } from "./phase-machine.ts";
import type { RunObserver } from "./run-observer.ts";

/** What the sizing works to: set by `--deadline`, `--budget` and `--max-workers`, priced by the plan's table. */
export interface FleetSizing {
  readonly deadlineMs: number | null;
  readonly budgetDollars: number | null;
  readonly maxWorkers: number;
  readonly instancePerHour: number;
  /** The S3 requests one entry costs: its PUT, the HEAD before it, its VALIDATE HEAD. */
  readonly requestDollarsPerEntry: number;
  readonly bootSec: number;
}

/** One row of the report's fleet timeline: a decision, and what the fleet was after it. */
export interface FleetTimelineRow {
  readonly at: string;
  /** Working and booting instances after the decision (those draining not counted). */
  readonly workers: number;
  /** When the run ends by the forecast; null when it cannot be told yet. */
  readonly forecast: string | null;
  readonly deadline: string | null;
  readonly spentDollars: number;
  /** `start 2`, `launch 1`, `drain i-0a…`, `hold`, `terminate i-0b…`. */
  readonly action: string;
  readonly reason: string;
}

/** The figures the live display shows beside the run's own. */
export interface FleetLive {
  readonly workers: number;
  readonly forecast: string | null;
  readonly deadline: string | null;
  readonly spentDollars: number;
  readonly budgetDollars: number | null;
}

export interface FleetWatchOptions {
  readonly fleet: Fleet;
  readonly tags: Record<string, string>;
  readonly initTimeoutMs: number;
  readonly pollMs: number;
  readonly log: Logger;
  readonly sizing: FleetSizing | null;
  readonly now: () => number;
}

interface Tracked {
  instance: FleetInstance;
  readonly launchedAtMs: number;
  /** When it stopped costing: terminated (by us or not). */
  endedAtMs: number | null;
  /** The worker it carries, once announced. */
  worker: string | null;
  /** Why we ended it, if we did. */
  endedBy: "silent" | "lost" | "drained" | null;
}

/** Per worker: the entries and bytes done while the queue held work for it, and the time it did so. */
interface Busy {
  phase: string;
  count: number;
  bytes: number;
  sec: number;
  lastCount: number;
  lastBytes: number;
  lastAtMs: number;
}

/** A worker's rate counts once it was measured over this long (a few reports, not the first burst). */
const MIN_MEASURED_SEC = 3;
/** Instance seconds below this are billed as this (EC2's minimum per instance). */
const MIN_BILLED_MS = 60_000;

export class FleetWatch implements RunObserver {
  readonly instances = new Map<string, Tracked>();
  readonly notes: string[] = [];
  readonly timeline: FleetTimelineRow[] = [];
  private emit: ((e: MachineEvent) => void) | null = null;
  private state: MachineState | null = null;
  private readonly busy = new Map<string, Busy>();
  private last: SizingDecision | null = null;
  private fatalSent = false;

  constructor(private readonly o: FleetWatchOptions) {}

  attach(emit: (e: MachineEvent) => void): void {
    this.emit = emit;
  }

  observe(state: MachineState, event: MachineEvent): void {
    this.state = state;
    if (event.type === "worker-state") this.match(event.message.worker, event.message.host);
  }

  /** Instances launched (at the start or by a decision), from now on watched. */
  add(instances: readonly FleetInstance[], at: number): void {
    for (const i of instances) {
      this.instances.set(i.id, {
        instance: i,
        launchedAtMs: at,
        endedAtMs: null,
        worker: null,
        endedBy: null,
      });
    }
  }

  ids(): string[] {
    return [...this.instances.keys()];
  }

  /**
   * After the run: the machine's last word classifies the instances no poll got to (a worker that drained or
   * was lost in the run's last seconds). Nothing is terminated here: the fleet's end terminates what is left.
   */
  settle(): void {
    const workers = this.state?.workers ?? {};
    for (const t of this.instances.values()) {
      if (t.endedBy !== null || !t.worker) continue;
      const w = workers[t.worker];
      if (w?.drain?.doneAtMs !== undefined) t.endedBy = "drained";
      else if (w?.state === "LOST") t.endedBy = "lost";
    }
  }

  endedBy(why: Tracked["endedBy"]): string[] {
    return [...this.instances.values()].filter((t) => t.endedBy === why).map((t) => t.instance.id);
  }

  /** Dollars so far: every instance's time (at least a minute each) and the requests of the entries done. */
  spent(at: number): number {
    const s = this.o.sizing;
    if (!s) return 0;
    let ms = 0;
    for (const t of this.instances.values())
      ms += Math.max(MIN_BILLED_MS, (t.endedAtMs ?? at) - t.launchedAtMs);
    const st = this.state;
    const done = st ? accounted(st.write) : 0;
    return (ms / 3_600_000) * s.instancePerHour + done * s.requestDollarsPerEntry;
  }

  live(at: number): FleetLive {
    const working = [...this.instances.values()].filter((t) => t.endedAtMs === null && t.endedBy === null);
    return {
      workers: working.length,
      forecast: this.last?.forecastEndMs ? iso(this.last.forecastEndMs) : null,
      deadline: this.o.sizing?.deadlineMs ? iso(this.o.sizing.deadlineMs) : null,
      spentDollars: round(this.spent(at)),
      budgetDollars: this.o.sizing?.budgetDollars ?? null,
    };
  }

  /** A row of the timeline, and its log line. */
  record(at: number, action: string, reason: string, d: SizingDecision | null): void {
    const row: FleetTimelineRow = {
      at: iso(at),
      workers: d?.workers ?? this.live(at).workers,
      forecast: d?.forecastEndMs ? iso(d.forecastEndMs) : null,
      deadline: this.o.sizing?.deadlineMs ? iso(this.o.sizing.deadlineMs) : null,
      spentDollars: round(this.spent(at)),
      action,
      reason,
    };
    this.timeline.push(row);
    const level = d?.deadlineMissed ? "warn" : "info";
    this.o.log.log(
      level,
      `fleet: ${action}: ${reason} (${row.workers} workers, $${row.spentDollars} spent)`,
      {
        event: "fleet",
        ...row,
      },
    );
  }

  /** Every `pollMs` until the signal: describe, end what will not work, size, and fail the run if none is left. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await pause(this.o.pollMs, signal);
      if (signal.aborted) return;
      let live: FleetInstance[];
      try {
        live = await this.o.fleet.describe(this.o.tags, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.o.log.warn(`could not describe the fleet: ${describe(err)}`);
        continue;
      }
      const at = this.o.now();
      this.sync(live, at);
      await this.endUseless(at);
      this.sample(at);
      if (this.o.sizing) await this.size(at, signal);
      this.failWhenNoneLeft();
    }
  }

  /** Which instance carries the worker that announced itself (named by its instance id, or on its host). */
  private match(worker: string, host: string): void {
    for (const t of this.instances.values()) {
      const i = t.instance;
      const dns = i.privateDnsName ?? "";
      const same =
        worker === i.id ||
        host === i.id ||
        host.startsWith(`${i.id}.`) ||
        (dns !== "" && dns.split(".")[0] === host.split(".")[0]);
      if (same && t.worker === null) {
        t.worker = worker;
        this.o.log.info(`instance ${i.id} announced its worker ${worker}`);
      }
    }
  }

  private sync(live: readonly FleetInstance[], at: number): void {
    const seen = new Map(live.map((i) => [i.id, i]));
    for (const t of this.instances.values()) {
      const i = seen.get(t.instance.id);
      if (i) t.instance = { ...t.instance, ...i };
      const gone = !i || i.state === "shutting-down" || i.state === "terminated";
      if (gone && t.endedAtMs === null) t.endedAtMs = at;
    }
  }

  /** Terminates instances that will not work: silent past the init timeout, or whose worker is lost or drained. */
  private async endUseless(at: number): Promise<void> {
    const workers = this.state?.workers ?? {};
    const end: { t: Tracked; why: NonNullable<Tracked["endedBy"]>; note: string }[] = [];
    for (const t of this.instances.values()) {
      if (t.endedBy !== null) continue;
      const w = t.worker ? workers[t.worker] : undefined;
      if (w?.drain?.doneAtMs !== undefined) {
        // Drained: it may have powered off by itself already; if not, it is terminated now.
        end.push({ t, why: "drained", note: `instance ${t.instance.id}: its worker drained: terminated` });
      } else if (t.endedAtMs === null && !t.worker && at - t.launchedAtMs > this.o.initTimeoutMs) {
        end.push({
          t,
          why: "silent",
          note: `instance(s) ${t.instance.id} did not announce a worker within ${Math.round(this.o.initTimeoutMs / 1000)} s: terminated; the run goes on without them`,
        });
      } else if (t.endedAtMs === null && w?.state === "LOST") {
        end.push({
          t,
          why: "lost",
          note: `instance ${t.instance.id}: its worker was declared lost: terminated`,
        });
      }
    }
    if (end.length === 0) return;
    const ids: string[] = [];
    for (const e of end) {
      e.t.endedBy = e.why;
      if (e.t.endedAtMs === null) ids.push(e.t.instance.id);
      e.t.endedAtMs ??= at;
      if (e.why === "drained") this.o.log.info(e.note);
      else {
        this.notes.push(e.note);
        this.o.log.warn(e.note);
      }
    }
    if (ids.length === 0) return;
    try {
      await this.o.fleet.terminate(ids);
    } catch (err) {
      this.o.log.warn(`could not terminate ${ids.join(", ")}: ${describe(err)}`);
    }
  }

  /** Adds the last poll's work to each worker's busy time, when the stage had work waiting for it. */
  private sample(at: number): void {
    const s = this.state;
    if (!s || (s.phase !== "WRITE" && s.phase !== "VALIDATE")) return;
    // With no more batches outstanding than workers, some wait for work: their pace is not their rate.
    const working = Object.values(s.workers).filter(isWorking).length;
    const saturated = s.dispatch !== null && s.dispatch.issued - s.dispatch.done > working;
    for (const w of Object.values(s.workers)) {
      const t = s.phase === "WRITE" ? w.totals.WRITE : w.totals.VALIDATE;
      const count = accounted(t);
      const b = this.busy.get(w.id);
      if (!b || b.phase !== s.phase) {
        this.busy.set(w.id, {
          phase: s.phase,
          count: 0,
          bytes: 0,
          sec: 0,
          lastCount: count,
          lastBytes: t.bytes,
          lastAtMs: at,
        });
        continue;
      }
      if (saturated) {
        b.count += count - b.lastCount;
        b.bytes += t.bytes - b.lastBytes;
        b.sec += (at - b.lastAtMs) / 1000;
      }
      b.lastCount = count;
      b.lastBytes = t.bytes;
      b.lastAtMs = at;
    }
  }

  private async size(at: number, signal: AbortSignal): Promise<void> {
    const s = this.state;
    const sizing = this.o.sizing;
    if (!s || !sizing || (s.phase !== "WRITE" && s.phase !== "VALIDATE")) return;
    const d = decide({
      nowMs: at,
      deadlineMs: sizing.deadlineMs,
      budgetDollars: sizing.budgetDollars,
      maxWorkers: sizing.maxWorkers,
      workers: this.working(s),
      booting: [...this.instances.values()].filter(
        (t) => t.endedAtMs === null && t.endedBy === null && !t.worker,
      ).length,
      remaining: remainingOf(s),
      crawl: crawlOf(s, at),
      spentDollars: this.spent(at),
      instancePerHour: sizing.instancePerHour,
      requestDollarsPerEntry: sizing.requestDollarsPerEntry,
      bootSec: sizing.bootSec,
    });
    const action = d.action;
    const previous = this.last;
    this.last = d;
    if (action.type === "hold") {
      if (!previous || shape(previous.reason) !== shape(d.reason)) this.record(at, "hold", d.reason, d);
      return;
    }
    if (action.type === "drain") {
      this.record(at, `drain ${action.ids.join(", ")}`, d.reason, d);
      this.emit?.({ type: "drain", at, workers: action.ids, reason: d.reason });
      return;
    }
    this.record(at, `launch ${action.count}`, d.reason, d);
    try {
      const launched = await this.o.fleet.launch(action.count, this.o.tags, signal);
      this.add(launched, this.o.now());
      this.o.log.info(`launched ${launched.length} instance(s): ${launched.map((i) => i.id).join(", ")}`);
      if (launched.length < action.count) {
        this.notes.push(`EC2 started ${launched.length} of ${action.count} instances asked for (capacity)`);
      }
    } catch (err) {
      if (signal.aborted) return;
      const note = `could not launch ${action.count} more instance(s): ${describe(err)}; the run goes on with the fleet it has`;
      this.notes.push(note);
      this.o.log.warn(note);
    }
  }

  /** The live workers on our instances that are not draining, with their rates while busy. */
  private working(s: MachineState): MeasuredWorker[] {
    const ours = new Set(
      [...this.instances.values()]
        .filter((t) => t.endedAtMs === null && t.endedBy === null)
        .map((t) => t.worker),
    );
    return Object.values(s.workers)
      .filter((w) => ours.has(w.id) && isWorking(w))
      .map((w) => {
        const b = this.busy.get(w.id);
        const measured = b && b.sec >= MIN_MEASURED_SEC && b.count > 0;
        return {
          id: w.id,
          entriesPerSec: measured ? b.count / b.sec : null,
          bytesPerSec: measured ? b.bytes / b.sec : null,
        };
      });
  }

  private failWhenNoneLeft(): void {
    const phase = this.state?.phase ?? "INITIALIZING";
    // Once the work is done (error report, shutdown), instances power off by design: that is no failure.
    if (this.fatalSent || !(phase === "INITIALIZING" || phase === "WRITE" || phase === "VALIDATE")) return;
    const alive = [...this.instances.values()].filter((t) => t.endedAtMs === null && t.endedBy === null);
    if (alive.length > 0 || this.instances.size === 0) return;
    this.fatalSent = true;
    const silent = this.endedBy("silent").length;
    this.emit?.({
      type: "fatal",
      at: this.o.now(),
      reason: `every worker instance has ended (${this.instances.size} launched, ${silent} silent)`,
    });
  }
}

function isWorking(w: WorkerView): boolean {
  return w.state !== "LOST" && w.state !== "STOPPED" && w.drain === undefined;
}

function accounted(t: Tally): number {
  return t.ok + t.failed + t.skipped + t.unchanged;
}

function remainingOf(s: MachineState): { entries: number; bytes: number; validateEntries: number } {
  if (s.phase === "VALIDATE")
    return { entries: 0, bytes: 0, validateEntries: Math.max(0, s.entries - accounted(s.validate)) };
  const bytesIssued = s.dispatch?.phase === "WRITE" ? s.dispatch.bytesIssued : 0;
  return {
    entries: Math.max(0, s.entries - accounted(s.write)),
    bytes: Math.max(0, bytesIssued - s.write.bytes),
    validateEntries: s.entries,
  };
}

function crawlOf(s: MachineState, at: number) {
  const d = s.dispatch;
  if (s.phase !== "WRITE" || !d || d.stage !== "content" || d.complete) return { done: true } as const;
  const sec = Math.max(1, (at - (s.phaseTimes.WRITE?.startMs ?? at)) / 1000);
  return { done: false, entriesPerSec: d.entriesIssued / sec, found: d.entriesIssued } as const;
}

/** A reason without its figures: a hold is recorded again only when it says something else. */
function shape(reason: string): string {
  return reason.replace(/[\d$.:TZ-]+/g, "#");
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
