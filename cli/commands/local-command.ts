/**
 * `s3-bucket-loader local`: signals, config, `runLocal`, report, exit code.
 */
import type { CommandModule } from "yargs";
import { parseConfig } from "../../core/config.ts";
import { ConfigError } from "../../core/errors.ts";
import { createShutdown } from "../../core/shutdown.ts";
import { runLocal } from "../../local/run-local.ts";
import { localSettings } from "../../local/settings.ts";
import { boundHeapGrowth } from "../../master/heap-growth.ts";
import { createRunConsole, printSummary, writeReport } from "../../master/output.ts";
import { exitCodeOf } from "../../master/report.ts";
import { dryRun } from "../../plan/dry-run.ts";
import { writeHtmlReport } from "../../report/html-report.ts";
import { createStatusRecorder } from "../../report/status-recorder.ts";
import { writeOptionsOf } from "../../worker/targets/make-target.ts";
import { yargsOptions } from "../cli-options.ts";
import { runExtraOptions, runExtraSettings, splitSettings, syncOptions, tocOptions } from "../run-extras.ts";

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
  // The master in this process: a peak that stays flat however large the TOC (see heap-growth.ts).
  boundHeapGrowth();
  // One parse of both tables: every bad setting is named in one error.
  const { config, extras } = splitSettings(
    parseConfig({ ...localSettings, ...runExtraSettings }, flags, env),
    runExtraSettings,
  );
  if (extras.dryRun) {
    if (!config.source)
      throw new ConfigError("--source: got nothing; a dry run walks a directory: give --source DIR");
    return dryRun({
      ...config,
      source: config.source,
      toc: tocOptions(extras),
      deletions: extras.delete,
      estimate: extras,
      writes: writeOptionsOf(config),
      json: config.logFormat === "json",
    });
  }
  const status = createStatusRecorder({
    runId: config.runId,
    stateDir: config.stateDir,
    source: config.source ?? "(a generated sample tree)",
    expectedWorkers: config.workers,
  });
  const log = createRunConsole({
    format: config.logFormat,
    quiet: extras.quiet,
    component: "local",
    expectedWorkers: config.workers,
    onProgress: status.progress,
  });
  const shutdown = createShutdown({
    proc: process,
    onSignal: (n) => {
      if (n === 1) log.warn("interrupted: stopping the run (press Ctrl-C again to abort)");
    },
  });
  try {
    const run = await runLocal(
      config,
      log,
      shutdown,
      { toc: tocOptions(extras), sync: syncOptions(extras) },
      userPool,
    );
    log.endDisplay();
    const report = status.finish(run.report, log);
    if (config.report) await writeReport(config.report, report);
    if (extras.reportHtml) await writeHtmlReport(extras.reportHtml, report);
    printSummary(report, log, config.report);
    return exitCodeOf(report.outcome);
  } finally {
    shutdown.dispose();
  }
}
