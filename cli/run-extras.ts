/**
 * What `master` and `local` take beyond their own tables: the TOC source and filters, the HTML report's file, the
 * dry run and the estimate it prints, `--quiet`. Parsed with `parseConfig` like every table.
 */
import { z } from "zod";
import { type ConfigOf, setting } from "../core/config.ts";
import { bool } from "../core/setting-schemas.ts";
import { estimateSettings } from "../plan/settings.ts";
import { tocSourceSettings } from "../toc/settings.ts";
import type { TocSourceOptions } from "../toc/toc-source.ts";

/** How a run shows itself: quiet, the HTML report, the dry run. */
const outputSettings = {
  quiet: setting<boolean>({
    flag: "quiet",
    type: "boolean",
    describe: "print warnings, errors and the outcome only (no live progress)",
    schema: bool,
    default: false,
  }),
  reportHtml: setting<string | undefined>({
    flag: "report-html",
    type: "string",
    describe: "write the final report as one self-contained HTML page to this file",
    schema: z.string().min(1, "expected a file path").optional(),
  }),
  dryRun: setting<boolean>({
    flag: "dry-run",
    type: "boolean",
    describe:
      "walk the source with the filters, write the TOC and print what would be sent and the estimate; copy nothing",
    schema: bool,
    default: false,
  }),
};

/** The options the commands show (`--quiet` is every command's, declared once by the CLI). */
export const runExtraOptions = {
  ...tocSourceSettings,
  reportHtml: outputSettings.reportHtml,
  dryRun: outputSettings.dryRun,
  ...estimateSettings,
};
export const runExtraSettings = { ...runExtraOptions, quiet: outputSettings.quiet };
export type RunExtras = ConfigOf<typeof runExtraSettings>;

/** A command's parsed settings, parted into its own and the extras (the tables have no name in common). */
export function splitSettings<C extends RunExtras>(
  all: C,
  extrasTable: typeof runExtraSettings,
): { config: Omit<C, keyof RunExtras>; extras: RunExtras } {
  const config: Record<string, unknown> = {};
  const extras: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(all)) (key in extrasTable ? extras : config)[key] = value;
  return { config: config as Omit<C, keyof RunExtras>, extras: extras as RunExtras };
}

export function tocOptions(extras: RunExtras): TocSourceOptions {
  return {
    crawler: extras.crawler,
    manifest: extras.manifest,
    include: extras.include,
    exclude: extras.exclude,
    modifiedAfterMs: extras.modifiedAfter,
  };
}
