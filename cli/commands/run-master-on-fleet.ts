/** `master --launch`: the run wrapped in its worker fleet, from the settings the CLI parsed. */
import { Ec2Fleet, makeEc2Client } from "../../core/aws/ec2-fleet.ts";
import type { ConfigOf } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { runWithFleet } from "../../master/fleet.ts";
import type { RunReport } from "../../master/report.ts";
import { type MasterOptions, type MasterPorts, runMaster } from "../../master/run-master.ts";
import type { masterCliSettings } from "../../master/settings.ts";

export type MasterCliConfig = ConfigOf<typeof masterCliSettings>;

/** Runs the master between launching and terminating its workers; undefined when the run never started. */
export async function runMasterOnFleet(
  config: MasterCliConfig,
  ports: MasterPorts,
  options: MasterOptions,
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
        log: options.log,
        shutdown: options.shutdown,
      },
      ports.reportQueue,
      (hooks) => runMaster({ ...ports, reportQueue: hooks.reportQueue }, { ...options, fatal: hooks.fatal }),
    );
    if (!out.ran) {
      options.log.error(`the run did not start: ${out.reason}`);
      return undefined;
    }
    return { ...out.result, notes: [...out.result.notes, ...out.fleet.notes] };
  } finally {
    client.destroy();
  }
}
