/**
 * `s3-bucket-loader master`: signals, config, adapters, `runMaster`, report, exit code.
 */
import type { CommandModule } from "yargs";
import { makeClients } from "../../core/aws/clients.ts";
import { parseConfig } from "../../core/config.ts";
import { createShutdown } from "../../core/shutdown.ts";
import { masterCliSettings } from "../../master/fleet-settings.ts";
import { boundHeapGrowth } from "../../master/heap-growth.ts";
import { createRunConsole, printSummary, writeReport } from "../../master/output.ts";
import { exitCodeOf } from "../../master/report.ts";
import { runMaster } from "../../master/run-master.ts";
import { masterOptions, masterPorts } from "../../master/wiring.ts";
import { dryRun } from "../../plan/dry-run.ts";
import { writeHtmlReport } from "../../report/html-report.ts";
import { yargsOptions } from "../cli-options.ts";
import { runExtraOptions, runExtraSettings, splitSettings, tocOptions } from "../run-extras.ts";

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
  if (extras.dryRun)
    return dryRun({
      ...config,
      target: undefined,
      toc: tocOptions(extras),
      estimate: extras,
      json: config.logFormat === "json",
    });
  const log = createRunConsole({
    ...config,
    format: config.logFormat,
    quiet: extras.quiet,
    component: "master",
    expectedWorkers: config.workers,
  });
  const shutdown = createShutdown({ proc: process });
  const clients = makeClients({ region: config.region, endpoint: config.endpointUrl, maxSockets: 32 });
  try {
    const ports = masterPorts(clients, config);
    const options = {
      ...masterOptions(config, "(the workers' target)", log, shutdown),
      toc: tocOptions(extras),
    };
    const report = config.launch
      ? await (await import("./run-master-on-fleet.ts")).runMasterOnFleet(config, ports, options)
      : await runMaster(ports, options);
    if (!report) return shutdown.stop.aborted ? 130 : 1;
    const full = log.finish(report);
    if (config.report) await writeReport(config.report, full);
    if (extras.reportHtml) await writeHtmlReport(extras.reportHtml, full);
    printSummary(full, log, config.report);
    return exitCodeOf(report.outcome);
  } finally {
    shutdown.dispose();
    clients.destroy();
  }
}
