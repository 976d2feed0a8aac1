/**
 * The `local` command's run, once its workers have started (local-command.ts): the console and status file,
 * `runLocal`, the reports, the exit code; and its dry run.
 */
import type { ChildProcess } from "node:child_process";
import { ConfigError } from "../../core/errors.ts";
import { createShutdown } from "../../core/shutdown.ts";
import { runLocal } from "../../local/run-local.ts";
import type { LocalConfig } from "../../local/settings.ts";
import { boundHeapGrowth } from "../../master/heap-growth.ts";
import { createRunConsole } from "../../master/output.ts";
import { dryRun } from "../../plan/dry-run.ts";
import { createStatusRecorder } from "../../report/status-recorder.ts";
import { writeOptionsOf } from "../../worker/targets/make-target.ts";
import { type RunExtras, syncOptions, tocOptions } from "../run-extras.ts";
import { endRun } from "./run-end.ts";

export async function localDryRun(config: LocalConfig, extras: RunExtras): Promise<number> {
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

export async function localRun(
  config: LocalConfig,
  extras: RunExtras,
  workers: readonly ChildProcess[],
  userPool: string | undefined,
): Promise<number> {
  // The master in this process: a peak that stays flat however large the TOC (see heap-growth.ts).
  boundHeapGrowth();
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
      workers,
    );
    return await endRun(run.report, {
      log,
      status,
      reportFile: config.report,
      reportHtml: extras.reportHtml,
    });
  } finally {
    shutdown.dispose();
  }
}
