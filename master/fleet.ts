/**
 * The master's worker fleet: launches the instances before the run, and ends them all when the run ends
 * (success, failure, Ctrl-C or a crash). While the run runs, the fleet observes the phase machine (see
 * fleet-watch.ts): the machine's events tell which instance carries which worker, and whether it lives; the
 * fleet ends the instances that will not work, sizes itself to the deadline or budget, and fails the run when
 * every instance is gone. Reads top to bottom: launch, observe while the run runs, end.
 */

import { FLEET_TAGS } from "../core/deployment.ts";
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Fleet, FleetInstance } from "../core/ports.ts";
import { pause } from "../core/retry.ts";
import type { Shutdown } from "../core/shutdown.ts";
import { type FleetSizing, type FleetTimelineRow, FleetWatch } from "./fleet-watch.ts";
import type { RunObserver } from "./run-observer.ts";

export type { FleetLive, FleetSizing, FleetTimelineRow } from "./fleet-watch.ts";

export interface FleetRunOptions {
  readonly fleet: Fleet;
  readonly count: number;
  readonly runId: string;
  /** The stack's fleet name: the tag the master's policy lets it terminate by. */
  readonly fleetName: string;
  /** Spot was asked for: instances EC2 started On-Demand instead (`--spot-fallback`) are noted. */
  readonly spot?: boolean | undefined;
  /** An instance whose worker has not announced itself this long after launch is terminated. */
  readonly initTimeoutMs: number;
  /** After a run that ended by itself, how long instances get to power off on their own (logs, uploads). */
  readonly drainMs: number;
  /** How often the fleet is described (and sized). */
  readonly pollMs: number;
  /** Size the fleet to a deadline or a budget; null: the fleet stays the size launched. */
  readonly sizing?: FleetSizing | null;
  readonly log: Logger;
  readonly shutdown: Shutdown;
  readonly now?: () => number;
}

/** What the run gets from the fleet. */
export interface FleetHooks {
  /** Watches the run's machine: pass it to the run as its observer. */
  readonly observer: RunObserver;
  /** The fleet's figures for the live display. */
  readonly live: FleetWatch["live"];
}

export interface FleetSummary {
  readonly launched: readonly string[];
  /** Instances terminated because their worker never announced itself. */
  readonly silent: readonly string[];
  /** Instances terminated because their worker was declared lost, or drained. */
  readonly lost: readonly string[];
  readonly drained: readonly string[];
  readonly terminated: readonly string[];
  readonly notes: readonly string[];
  /** Every sizing decision, with the fleet and forecast after it. Empty without --deadline or --budget. */
  readonly timeline: readonly FleetTimelineRow[];
}

export type FleetRun<T> =
  | { readonly ran: true; readonly result: T; readonly fleet: FleetSummary }
  | { readonly ran: false; readonly reason: string; readonly fleet: FleetSummary };

/** Tags of the run's instances: the fleet tag (IAM), the run tag (read by the boot script), a name. */
export function fleetTags(fleetName: string, runId: string): Record<string, string> {
  return { [FLEET_TAGS.fleet]: fleetName, [FLEET_TAGS.runId]: runId, Name: `s3bl-worker-${runId}` };
}

export async function runWithFleet<T extends { readonly outcome: string }>(
  options: FleetRunOptions,
  run: (hooks: FleetHooks) => Promise<T>,
): Promise<FleetRun<T>> {
  const now = options.now ?? Date.now;
  const tags = fleetTags(options.fleetName, options.runId);
  const watch = new FleetWatch({
    fleet: options.fleet,
    tags,
    initTimeoutMs: options.initTimeoutMs,
    pollMs: options.pollMs,
    log: options.log,
    sizing: options.sizing ?? null,
    now,
  });
  const summary = (terminated: readonly string[]): FleetSummary => ({
    launched: watch.ids(),
    silent: watch.endedBy("silent"),
    lost: watch.endedBy("lost"),
    drained: watch.endedBy("drained"),
    terminated,
    notes: watch.notes,
    timeline: watch.timeline,
  });

  // ---- launch ----
  options.log.info(`launching ${options.count} worker instance(s) for run ${options.runId}`, {
    runId: options.runId,
  });
  let instances: FleetInstance[];
  try {
    // Not cancellable: once EC2 has the request, only its answer tells which instances to terminate.
    instances = await options.fleet.launch(options.count, tags);
  } catch (err) {
    const terminated = await terminateAll(options, tags, [], "the launch failed");
    return { ran: false, reason: describe(err), fleet: summary(terminated) };
  }
  watch.add(instances, now());
  const launched = instances.map((i) => i.id);
  options.log.info(`launched ${launched.length} instance(s): ${launched.join(", ")}`, {
    runId: options.runId,
  });
  noteOnDemand(options, instances, watch.notes);
  if (options.sizing) {
    watch.record(now(), `start ${launched.length}`, "the fleet launched with --workers", null);
  }
  if (launched.length < options.count) {
    watch.notes.push(
      `EC2 started ${launched.length} of ${options.count} instances (capacity); the run goes on with them`,
    );
    options.log.warn(watch.notes[watch.notes.length - 1] ?? "");
  }
  if (options.shutdown.stop.aborted) {
    const terminated = await terminateAll(options, tags, launched, "interrupted while launching");
    return { ran: false, reason: "interrupted while launching", fleet: summary(terminated) };
  }

  // ---- observe while the run runs ----
  const done = new AbortController();
  const watching = watch.run(done.signal);
  const end = async (outcome: string): Promise<FleetSummary> => {
    done.abort();
    await watching;
    watch.settle();
    // Let workers that finished power off by themselves (logs, yas3fs uploads), then terminate what is left.
    if (outcome !== "interrupted" && outcome !== "crashed" && options.drainMs > 0) await drain(options, tags);
    return summary(await terminateAll(options, tags, watch.ids(), `run ${outcome}`));
  };
  let result: T;
  try {
    result = await run({ observer: watch, live: (at) => watch.live(at) });
  } catch (err) {
    await end("crashed");
    throw err;
  }
  return { ran: true, result, fleet: await end(result.outcome) };
}

/** With --spot: instances EC2 started On-Demand instead (`--spot-fallback`) are a note of the report. */
function noteOnDemand(o: FleetRunOptions, instances: readonly FleetInstance[], notes: string[]): void {
  const onDemand = instances.filter((i) => i.market === "on-demand").length;
  if (!o.spot || onDemand === 0) return;
  notes.push(
    `${onDemand} of ${instances.length} instances were launched On-Demand: no subnet had Spot capacity for them (--spot-fallback)`,
  );
  o.log.warn(notes[notes.length - 1] ?? "");
}

/** Waits until no instance of the run is still up, or `drainMs`, or a second Ctrl-C. */
async function drain(o: FleetRunOptions, tags: Record<string, string>): Promise<void> {
  const deadline = (o.now ?? Date.now)() + o.drainMs;
  o.log.info(
    `waiting up to ${Math.round(o.drainMs / 1000)} s for the workers to upload their logs and power off`,
  );
  while ((o.now ?? Date.now)() < deadline && !o.shutdown.abort.aborted) {
    try {
      const up = (await o.fleet.describe(tags)).filter((i) => i.state !== "shutting-down");
      if (up.length === 0) return;
    } catch (err) {
      o.log.warn(`could not describe the fleet: ${describe(err)}`);
    }
    await pause(Math.min(o.pollMs, Math.max(0, deadline - (o.now ?? Date.now)())), o.shutdown.abort);
  }
}

/** Describing and terminating the fleet at the end may take this long at most, retries included. */
const TERMINATE_TIMEOUT_MS = 120_000;

/**
 * Terminates every instance of the run: those EC2 lists by tag (which also finds instances of a launch whose
 * answer was lost) and those we launched. Bounded in time, and deaf to Ctrl-C: this is the cleanup.
 */
async function terminateAll(
  o: FleetRunOptions,
  tags: Record<string, string>,
  launched: readonly string[],
  why: string,
): Promise<string[]> {
  const signal = AbortSignal.timeout(TERMINATE_TIMEOUT_MS);
  let ids = [...launched];
  try {
    const live = await o.fleet.describe(tags, signal);
    ids = [...new Set([...ids, ...live.filter((i) => i.state !== "shutting-down").map((i) => i.id)])];
  } catch (err) {
    o.log.warn(`could not list the run's instances: ${describe(err)}`);
  }
  if (ids.length === 0) return [];
  try {
    await o.fleet.terminate(ids, signal);
    o.log.info(`${why}: terminated ${ids.length} instance(s)`, { runId: o.runId });
    return ids;
  } catch (err) {
    o.log.error(
      `${why}: could not terminate ${ids.join(", ")}: ${describe(err)}; terminate them by hand (tag ${FLEET_TAGS.runId}=${o.runId})`,
    );
    return [];
  }
}
