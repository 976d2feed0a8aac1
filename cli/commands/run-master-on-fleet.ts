/** `master --launch`: the run wrapped in its worker fleet, from the settings the CLI parsed. */
import { Ec2Fleet, makeEc2Client } from "../../core/aws/ec2-fleet.ts";
import type { ConfigOf } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { INSTANCE_TYPES } from "../../core/prices.ts";
import { type FleetSizing, runWithFleet } from "../../master/fleet.ts";
import { deadlineAt } from "../../master/fleet-sizing.ts";
import type { RunReport } from "../../master/report.ts";
import { type MasterOptions, type MasterPorts, runMaster } from "../../master/run-master.ts";
import type { masterCliSettings } from "../../master/settings.ts";
import type { RunExtras } from "../run-extras.ts";

export type MasterCliConfig = ConfigOf<typeof masterCliSettings>;

/** The sizing the settings ask for, priced by the plan's table; null without `--deadline` or `--budget`. */
export function fleetSizing(
  config: MasterCliConfig,
  estimate: RunExtras,
  startMs: number,
): FleetSizing | null {
  if (config.deadline === undefined && config.budget === undefined) return null;
  const deadlineMs = config.deadline === undefined ? null : deadlineAt(config.deadline, startMs);
  if (deadlineMs !== null && deadlineMs <= startMs) {
    throw new ConfigError(
      `--deadline: ${config.deadline} is past already; give a later time or a duration such as 2h`,
    );
  }
  const perHour = estimate.priceInstancePerHour ?? INSTANCE_TYPES[estimate.instanceType]?.perHour;
  if (perHour === undefined) {
    throw new ConfigError(
      `--instance-type: got ${JSON.stringify(estimate.instanceType)}; it is not in the price table (${Object.keys(INSTANCE_TYPES).join(", ")}): give --price-instance-per-hour too`,
    );
  }
  // One PUT per entry, a HEAD before it (the workers' --target-empty is not the master's to know), one HEAD
  // in VALIDATE, and its share of SQS requests.
  const requestDollarsPerEntry =
    estimate.priceS3PutPer1k / 1000 +
    (2 * estimate.priceS3HeadPer1k) / 1000 +
    (estimate.sqsRequestsPerEntry * estimate.priceSqsPerMillion) / 1e6;
  return {
    deadlineMs,
    budgetDollars: config.budget ?? null,
    maxWorkers: Math.max(config.maxWorkers, config.workers),
    instancePerHour: perHour,
    requestDollarsPerEntry,
    bootSec: estimate.bootSec,
  };
}

/** Runs the master between launching and terminating its workers; undefined when the run never started. */
export async function runMasterOnFleet(
  config: MasterCliConfig,
  ports: MasterPorts,
  options: MasterOptions,
  estimate: RunExtras,
): Promise<RunReport | undefined> {
  if (!config.launchTemplateId || !config.fleetName) {
    throw new ConfigError(
      "--launch: needs the stack's launch template and fleet name; give --stack NAME or --outputs-file FILE (or --launch-template-id and --fleet-name)",
    );
  }
  if (config.spotFallback && !config.spot) {
    throw new ConfigError(
      "--spot-fallback: falls back from Spot to On-Demand, so it needs --spot (without it the launch is On-Demand already)",
    );
  }
  const sizing = fleetSizing(config, estimate, (options.now ?? Date.now)());
  const client = makeEc2Client({
    region: config.region,
    endpoint: config.ec2EndpointUrl ?? config.endpointUrl,
  });
  try {
    const fleet = new Ec2Fleet(client, {
      launchTemplateId: config.launchTemplateId,
      subnetIds: config.subnetIds ? config.subnetIds.split(",") : [],
      spot: config.spot,
      spotFallback: config.spotFallback,
    });
    const out = await runWithFleet(
      {
        fleet,
        count: config.workers,
        runId: config.runId,
        fleetName: config.fleetName,
        spot: config.spot,
        initTimeoutMs: config.initTimeoutSec * 1000,
        drainMs: config.fleetDrainSec * 1000,
        pollMs: config.fleetPollSec * 1000,
        sizing,
        log: options.log,
        shutdown: options.shutdown,
      },
      (hooks) =>
        runMaster(ports, {
          ...options,
          observer: hooks.observer,
          onProgress: (p) => options.onProgress?.(sizing ? { ...p, fleet: hooks.live(Date.now()) } : p),
        }),
    );
    if (!out.ran) {
      options.log.error(`the run did not start: ${out.reason}`);
      return undefined;
    }
    const { notes, ...fleetReport } = out.fleet;
    return { ...out.result, notes: [...out.result.notes, ...notes], fleet: fleetReport };
  } finally {
    client.destroy();
  }
}
