/**
 * `s3-bucket-loader plan --source DIR [--target …] [--workers N --instance-type T]`: walks (or samples) the
 * source and prints its counts, a size histogram, what the run will report, and an estimate of time and cost.
 * Nothing is sent anywhere; no AWS call is made. `--json` prints the same as one JSON document.
 */
import type { CommandModule } from "yargs";
import { parseConfig } from "../../core/config.ts";
import { writeOptionsFrom } from "../../core/write-options.ts";
import { makePlan } from "../../plan/plan-run.ts";
import { renderPlan } from "../../plan/render.ts";
import { planSettings } from "../../plan/settings.ts";
import { tocSourceSettings } from "../../toc/settings.ts";
import { yargsOptions } from "../cli-options.ts";

const table = { ...planSettings, ...tocSourceSettings };

export const planCommand: CommandModule = {
  command: "plan",
  describe: "before a run: walk the source, count what it holds and estimate the run's time and cost",
  builder: (y) => y.options(yargsOptions(table)),
  handler: async (argv) => {
    const c = parseConfig(table, argv, process.env);
    const view = await makePlan({
      source: c.source,
      target: c.target,
      toc: {
        crawler: c.crawler,
        manifest: c.manifest,
        include: c.include,
        exclude: c.exclude,
        modifiedAfterMs: c.modifiedAfter,
      },
      workers: c.workers,
      targetEmpty: c.targetEmpty,
      sample: c.sample,
      totalEntries: c.totalEntries,
      multipartThresholdMb: c.multipartThresholdMb,
      partSizeMb: c.partSizeMb,
      estimate: c,
      // The run id only counts as one more tag here.
      writes: writeOptionsFrom({ ...c, noOverwrite: false }, "RUN_ID"),
    });
    process.stdout.write(argv.json ? `${JSON.stringify(view, null, 2)}\n` : renderPlan(view));
    process.exitCode = 0;
  },
};
