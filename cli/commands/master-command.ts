/**
 * `s3-bucket-loader master`: signals, config, adapters, `runMaster`, report, exit code.
 */
import type { CommandModule } from "yargs";
import { makeClients } from "../../core/aws/clients.ts";
import { S3ObjectStore } from "../../core/aws/s3-object-store.ts";
import { parseConfig } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { createShutdown } from "../../core/shutdown.ts";
import { boundHeapGrowth } from "../../master/heap-growth.ts";
import { createRunConsole } from "../../master/output.ts";
import { runMaster } from "../../master/run-master.ts";
import { masterCliSettings } from "../../master/settings.ts";
import { masterOptions, masterPorts } from "../../master/wiring.ts";
import { dryRun } from "../../plan/dry-run.ts";
import { createStatusRecorder } from "../../report/status-recorder.ts";
import { makeTargetDeleter } from "../../worker/targets/target-deleter.ts";
import { yargsOptions } from "../cli-options.ts";
import { runExtraOptions, runExtraSettings, splitSettings, syncOptions, tocOptions } from "../run-extras.ts";
import { endRun } from "./run-end.ts";

export const masterCommand: CommandModule = {
  command: "master",
  describe:
    "run the master of a load against existing resources, or a deployed stack (--stack) and its workers (--launch)",
  builder: (y) => y.options(yargsOptions({ ...masterCliSettings, ...runExtraOptions })),
  handler: async (argv) => {
    process.exitCode = await masterMain(argv, process.env);
  },
};

/**
 * The CloudFormation and EC2 clients load only when the master command runs: evaluating them took a tenth of
 * every command's start, `local` and `worker` included.
 */
async function withDeployment(flags: Record<string, unknown>, env: NodeJS.ProcessEnv) {
  return (await import("../../master/fleet-deployment.ts")).withDeployment(flags, env);
}

async function masterMain(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  // The crawl stats many files at once (a round trip each on a network filer): more threads than libuv's 4,
  // set before the thread pool's first use.
  process.env.UV_THREADPOOL_SIZE ??= "32";
  // The master in this process: a peak that stays flat however large the TOC (see heap-growth.ts).
  boundHeapGrowth();
  // One parse of both tables: every bad setting is named in one error.
  const { config, extras } = splitSettings(
    parseConfig({ ...masterCliSettings, ...runExtraSettings }, await withDeployment(flags, env), env),
    runExtraSettings,
  );
  if (extras.delete && !config.target)
    throw new ConfigError("--delete: the master removes from the target itself: give it with --target");
  checkSizingFlags(config);
  if (extras.dryRun)
    return dryRun({
      ...config,
      target: config.target,
      deletions: extras.delete,
      toc: tocOptions(extras),
      estimate: extras,
      json: config.logFormat === "json",
    });
  const status = createStatusRecorder({ ...config, expectedWorkers: config.workers });
  const log = createRunConsole({
    format: config.logFormat,
    quiet: extras.quiet,
    component: "master",
    expectedWorkers: config.workers,
    onProgress: status.progress,
  });
  const shutdown = createShutdown({ proc: process });
  const clients = makeClients({ region: config.region, endpoint: config.endpointUrl, maxSockets: 32 });
  try {
    const target = config.target;
    const ports = {
      ...masterPorts(clients, config),
      deleter: target
        ? makeTargetDeleter(target, (bucket) => new S3ObjectStore(clients.s3, bucket))
        : undefined,
    };
    const options = {
      ...masterOptions(config, target ?? "(the workers' target)", log, shutdown),
      toc: tocOptions(extras),
      sync: { ...syncOptions(extras), target },
    };
    const report = config.launch
      ? await (await import("./run-master-on-fleet.ts")).runMasterOnFleet(config, ports, options, extras)
      : await runMaster(ports, options);
    if (!report) return shutdown.stop.aborted ? 130 : 1;
    return await endRun(report, { log, status, reportFile: config.report, reportHtml: extras.reportHtml });
  } finally {
    shutdown.dispose();
    clients.destroy();
  }
}

/** `--deadline` and `--budget` size a fleet the master launches: without `--launch` they are a usage error. */
function checkSizingFlags(config: {
  launch: boolean;
  deadline?: string | undefined;
  budget?: number | undefined;
}): void {
  if (!config.launch && (config.deadline !== undefined || config.budget !== undefined)) {
    throw new ConfigError(
      "--deadline and --budget size the fleet the master launches: add --launch (and --stack NAME), or drop them",
    );
  }
}
