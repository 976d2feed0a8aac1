/**
 * The master's worker fleet: launches the instances before the run, watches that each one's worker announces
 * itself, terminates an instance that stays silent past its deadline (the run goes on with the others, as the
 * phase machine does after its init timeout), fails the run when every instance is gone, and terminates the
 * whole fleet when the run ends: success, failure, Ctrl-C or a crash. Reads top to bottom: launch, watch while
 * the run runs, end.
 */

import { FLEET_TAGS } from "../core/deployment.ts";
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { decodeMessage } from "../core/messages.ts";
import type { Fleet, FleetInstance, MessageQueue } from "../core/ports.ts";
import { pause } from "../core/retry.ts";
import type { Shutdown } from "../core/shutdown.ts";

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
  /** How often the fleet is described. */
  readonly pollMs: number;
  readonly log: Logger;
  readonly shutdown: Shutdown;
  readonly now?: () => number;
}

/** What the run gets from the fleet. */
export interface FleetHooks {
  /** The report queue, watched for the workers' announcements. */
  readonly reportQueue: MessageQueue;
  /** Aborted when the fleet can no longer carry the run: every instance has ended. */
  readonly fatal: AbortSignal;
}

export interface FleetSummary {
  readonly launched: readonly string[];
  /** Instances terminated because their worker never announced itself. */
  readonly silent: readonly string[];
  readonly terminated: readonly string[];
  readonly notes: readonly string[];
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
  reportQueue: MessageQueue,
  run: (hooks: FleetHooks) => Promise<T>,
): Promise<FleetRun<T>> {
  const now = options.now ?? Date.now;
  const tags = fleetTags(options.fleetName, options.runId);
  const notes: string[] = [];
  const silent: string[] = [];
  const endedByUs = new Set<string>();

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
    return { ran: false, reason: describe(err), fleet: { launched: [], silent, terminated, notes } };
  }
  const launchedAt = now();
  const launched = instances.map((i) => i.id);
  options.log.info(`launched ${launched.length} instance(s): ${launched.join(", ")}`, {
    runId: options.runId,
  });
  const onDemand = instances.filter((i) => i.market === "on-demand").length;
  if (options.spot && onDemand > 0) {
    notes.push(
      `${onDemand} of ${launched.length} instances were launched On-Demand: no subnet had Spot capacity for them (--spot-fallback)`,
    );
    options.log.warn(notes[notes.length - 1] ?? "");
  }
  if (launched.length < options.count) {
    notes.push(
      `EC2 started ${launched.length} of ${options.count} instances (capacity); the run goes on with them`,
    );
    options.log.warn(notes[notes.length - 1] ?? "");
  }
  if (options.shutdown.stop.aborted) {
    const terminated = await terminateAll(options, tags, launched, "interrupted while launching");
    return {
      ran: false,
      reason: "interrupted while launching",
      fleet: { launched, silent, terminated, notes },
    };
  }

  // ---- watch while the run runs ----
  const announced = new Set<string>();
  const byId = new Map(instances.map((i) => [i.id, i]));
  const matchWorker = (worker: string, host: string) => {
    for (const i of byId.values()) {
      const dns = i.privateDnsName ?? "";
      if (
        worker === i.id ||
        host === i.id ||
        host.startsWith(`${i.id}.`) ||
        (dns && dns.split(".")[0] === host.split(".")[0])
      ) {
        if (!announced.has(i.id)) options.log.info(`instance ${i.id} announced its worker ${worker}`);
        announced.add(i.id);
      }
    }
  };
  const fatal = new AbortController();
  const done = new AbortController();
  const watch = watchFleet(options, {
    tags,
    launched,
    launchedAt,
    byId,
    announced,
    endedByUs,
    notes,
    silent,
    fatal,
    signal: done.signal,
    now,
  });

  const end = async (outcome: string): Promise<FleetSummary> => {
    done.abort();
    await watch;
    // Let workers that finished power off by themselves (logs, yas3fs uploads), then terminate what is left.
    if (outcome !== "interrupted" && outcome !== "crashed" && options.drainMs > 0) await drain(options, tags);
    const terminated = await terminateAll(options, tags, launched, `run ${outcome}`);
    return { launched, silent, terminated, notes };
  };
  let result: T;
  try {
    result = await run({
      reportQueue: watchAnnouncements(reportQueue, options.runId, matchWorker),
      fatal: fatal.signal,
    });
  } catch (err) {
    await end("crashed");
    throw err;
  }
  return { ran: true, result, fleet: await end(result.outcome) };
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

/**
 * Terminates every instance of the run: those EC2 lists by tag (which also finds instances of a launch whose
 * answer was lost) and those we launched. Bounded in time, and deaf to Ctrl-C: this is the cleanup.
 */
/** What the watch of a running fleet shares with the run that launched it. */
interface FleetWatch {
  readonly tags: Record<string, string>;
  readonly launched: readonly string[];
  readonly launchedAt: number;
  readonly byId: Map<string, FleetInstance>;
  /** Instances whose worker has announced itself (seen on the report queue). */
  readonly announced: ReadonlySet<string>;
  readonly endedByUs: Set<string>;
  readonly notes: string[];
  readonly silent: string[];
  /** Aborted when every worker instance has ended: the run cannot go on. */
  readonly fatal: AbortController;
  readonly signal: AbortSignal;
  readonly now: () => number;
}

/**
 * Every `pollMs` while the run runs: terminates instances that announced no worker within the init timeout,
 * and fails the run once none is left.
 */
async function watchFleet(options: FleetRunOptions, w: FleetWatch): Promise<void> {
  while (!w.signal.aborted) {
    await pause(options.pollMs, w.signal);
    if (w.signal.aborted) return;
    let live: FleetInstance[];
    try {
      live = await options.fleet.describe(w.tags, w.signal);
    } catch (err) {
      if (w.signal.aborted) return;
      options.log.warn(`could not describe the fleet: ${describe(err)}`);
      continue;
    }
    for (const i of live) w.byId.set(i.id, { ...w.byId.get(i.id), ...i });
    const running = new Set(live.filter((i) => i.state !== "shutting-down").map((i) => i.id));
    if (w.now() - w.launchedAt > options.initTimeoutMs) {
      const quiet = w.launched.filter(
        (id) => !w.announced.has(id) && !w.endedByUs.has(id) && running.has(id),
      );
      if (quiet.length > 0) {
        const note = `instance(s) ${quiet.join(", ")} did not announce a worker within ${Math.round(options.initTimeoutMs / 1000)} s: terminated; the run goes on without them`;
        w.notes.push(note);
        options.log.warn(note);
        w.silent.push(...quiet);
        for (const id of quiet) w.endedByUs.add(id);
        await options.fleet
          .terminate(quiet)
          .catch((err) => options.log.warn(`could not terminate ${quiet.join(", ")}: ${describe(err)}`));
      }
    }
    const alive = w.launched.filter((id) => running.has(id) && !w.endedByUs.has(id));
    if (alive.length === 0 && !w.fatal.signal.aborted) {
      w.fatal.abort(
        new Error(
          `every worker instance has ended (${w.launched.length} launched, ${w.silent.length} silent)`,
        ),
      );
    }
  }
}

/** Describing and terminating the fleet at the end may take this long at most, retries included. */
const TERMINATE_TIMEOUT_MS = 120_000;

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

/** The report queue, unchanged, except that each worker announcement is also shown to `seen`. */
function watchAnnouncements(
  queue: MessageQueue,
  runId: string,
  seen: (worker: string, host: string) => void,
): MessageQueue {
  return {
    get url() {
      return queue.url;
    },
    get requests() {
      return queue.requests;
    },
    send: (bodies, signal) => queue.send(bodies, signal),
    async receive(opts, signal) {
      const messages = await queue.receive(opts, signal);
      for (const m of messages) {
        if (!m.body.includes("WORKER_STATE")) continue;
        const d = decodeMessage(m.body, { expectRun: runId, accept: ["WORKER_STATE"] });
        if (d.ok && d.message.type === "WORKER_STATE") seen(d.message.worker, d.message.host);
      }
      return messages;
    },
    delete: (receipts, signal) => queue.delete(receipts, signal),
    extend: (receipts, sec, signal) => queue.extend(receipts, sec, signal),
    purge: (signal) => queue.purge(signal),
    visibilityTimeoutSec: (signal) => queue.visibilityTimeoutSec(signal),
  };
}
