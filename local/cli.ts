/**
 * `s3-bucket-loader local`: signals, config, `runLocal`, report, exit code.
 */
import type { CommandModule } from "yargs";
import { yargsOptions } from "../core/cli-options.ts";
import { localSettings, parseConfig } from "../core/config.ts";
import { createLogger } from "../core/log.ts";
import { createShutdown } from "../core/shutdown.ts";
import { printSummary, writeReport } from "../master/output.ts";
import { exitCodeOf } from "../master/report.ts";
import { runLocal } from "./run-local.ts";

export const localCommand: CommandModule = {
  command: "local",
  describe: "run a whole load on this machine: emulator, queues, workers and master",
  builder: (y) => y.options(yargsOptions(localSettings)),
  handler: async (argv) => {
    process.exitCode = await localMain(argv, process.env);
  },
};

async function localMain(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  const config = parseConfig(localSettings, flags, env);
  const log = createLogger(config.logFormat, { component: "local" });
  const shutdown = createShutdown({
    proc: process,
    onSignal: (n) => {
      if (n === 1) log.warn("interrupted: stopping the run (press Ctrl-C again to abort)");
    },
  });
  try {
    const run = await runLocal(config, log, shutdown);
    if (config.report) await writeReport(config.report, run.report);
    printSummary(run.report, log, config.report);
    return exitCodeOf(run.report.outcome);
  } finally {
    shutdown.dispose();
  }
}
