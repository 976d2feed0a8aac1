/**
 * What `master` and `local` take beyond their own tables: the TOC source and filters, the HTML report's file, the
 * dry run and the estimate it prints, `--quiet`. Parsed with `parseConfig` like every table.
 */
import type { ConfigOf } from "../core/config.ts";
import { estimateSettings } from "../plan/plan-settings.ts";
import { outputSettings, tocSourceSettings } from "../toc/settings.ts";
import type { TocSourceOptions } from "../toc/toc-source.ts";

/** The options the commands show (`--quiet` is every command's, declared once by the CLI). */
export const runExtraOptions = {
  ...tocSourceSettings,
  reportHtml: outputSettings.reportHtml,
  dryRun: outputSettings.dryRun,
  ...estimateSettings,
};
export const runExtraSettings = { ...runExtraOptions, quiet: outputSettings.quiet };
export type RunExtras = ConfigOf<typeof runExtraSettings>;

export function tocOptions(extras: RunExtras): TocSourceOptions {
  return {
    crawler: extras.crawler,
    manifest: extras.manifest,
    include: extras.include,
    exclude: extras.exclude,
    modifiedAfterMs: extras.modifiedAfter,
  };
}
