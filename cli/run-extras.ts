/**
 * What `master` and `local` take beyond their own tables: the TOC source and filters, the HTML report's file, the
 * dry run and the estimate it prints, `--quiet`. Parsed with `parseConfig` like every table.
 */
import { z } from "zod";
import { type ConfigOf, setting } from "../core/config.ts";
import { bool, int } from "../core/setting-schemas.ts";
import type { SyncOptions } from "../master/run-finish.ts";
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

/** What a run leaves behind beyond its report: the verification manifest, and deletions of what the source lost. */
const syncSettings = {
  manifestOut: setting<string | undefined>({
    flag: "manifest-out",
    type: "string",
    describe:
      "write the verification manifest here, one JSON line per entry with its outcome: a FILE or s3://BUCKET/KEY (gzip when the name ends in .gz)",
    schema: z
      .string()
      .min(1, "expected a file path or s3://BUCKET/KEY")
      .refine(
        (v) => !v.startsWith("s3://") || /^s3:\/\/[^/]+\/.+/.test(v),
        "expected s3://BUCKET/KEY with a key",
      )
      .optional(),
  }),
  delete: setting<boolean>({
    flag: "delete",
    type: "boolean",
    describe:
      "after VALIDATE, delete from the target what the previous successful run of the same source and target held and this run's TOC no longer has",
    schema: bool,
    default: false,
  }),
  maxDelete: setting<number | undefined>({
    flag: "max-delete",
    type: "number",
    describe:
      "with --delete: the run stops with an error, deleting nothing, when more than this many would go",
    schema: int(0, Number.MAX_SAFE_INTEGER).optional(),
  }),
};

/** The options the commands show (`--quiet` is every command's, declared once by the CLI). */
export const runExtraOptions = {
  ...tocSourceSettings,
  reportHtml: outputSettings.reportHtml,
  dryRun: outputSettings.dryRun,
  ...syncSettings,
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

/** The manifest and the deletions a run was asked for. */
export function syncOptions(extras: RunExtras): SyncOptions {
  return { manifestOut: extras.manifestOut, delete: extras.delete, maxDelete: extras.maxDelete };
}
