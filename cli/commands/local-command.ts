/**
 * `s3-bucket-loader local`: signals, config, `runLocal`, report, exit code. The worker processes start as soon as
 * the settings are read, before this process loads the master's modules (local-run.ts): the two load side by side.
 */
import type { CommandModule } from "yargs";
import { parseConfig } from "../../core/config.ts";
import { localSettings } from "../../local/settings.ts";
import { spawnWorkers } from "../../local/worker-processes.ts";
import { yargsOptions } from "../cli-options.ts";
import { runExtraOptions, runExtraSettings, splitSettings } from "../run-extras.ts";

export const localCommand: CommandModule = {
  command: "local",
  describe: "run a whole load on this machine: emulator, queues, workers and master",
  builder: (y) => y.options(yargsOptions({ ...localSettings, ...runExtraOptions })),
  handler: async (argv) => {
    process.exitCode = await localMain(argv, process.env);
  },
};

async function localMain(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<number> {
  // The crawl stats many files at once (a round trip each on a network filer): more threads than libuv's 4,
  // set before the thread pool's first use.
  // (Only this process's: the workers size theirs by their concurrency, unless the user set one.)
  const userPool = process.env.UV_THREADPOOL_SIZE;
  process.env.UV_THREADPOOL_SIZE ??= "32";
  // One parse of both tables: every bad setting is named in one error.
  const { config, extras } = splitSettings(
    parseConfig({ ...localSettings, ...runExtraSettings }, flags, env),
    runExtraSettings,
  );
  if (extras.dryRun) return (await import("./local-run.ts")).localDryRun(config, extras);
  const workers = spawnWorkers(config, userPool);
  try {
    return await (await import("./local-run.ts")).localRun(config, extras, workers, userPool);
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
  }
}
