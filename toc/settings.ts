/**
 * The TOC's settings table, shared by the master, the local run and the plan: what the TOC is made of (a
 * manifest, filters). Declared like the programs' tables and parsed with the same `parseConfig`, so flags,
 * the configuration file and help agree.
 */
import { z } from "zod";
import { setting } from "../core/config.ts";

/** One glob or several (a repeated flag, or a list in the configuration file). */
const globs = z.preprocess(
  (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]),
  z.array(z.string().min(1, "expected a glob such as '**/*.log'"), {
    error: "expected a glob such as '**/*.log', or a list of them",
  }),
);

/** `YYYY-MM-DD` (midnight UTC) or a full ISO 8601 time, as epoch milliseconds. */
const instant = z
  .union([z.string(), z.date()], { error: "expected a date such as 2024-01-31 or 2024-01-31T12:00:00Z" })
  .transform((v, ctx) => {
    const ms =
      v instanceof Date
        ? v.getTime()
        : /^\d{4}-\d{2}-\d{2}$/.test(v)
          ? Date.parse(`${v}T00:00:00Z`)
          : /^\d{4}-\d{2}-\d{2}T/.test(v)
            ? Date.parse(v)
            : Number.NaN;
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: "custom", message: "expected a date such as 2024-01-31 or 2024-01-31T12:00:00Z" });
      return z.NEVER;
    }
    return ms;
  });

export const tocSourceSettings = {
  crawler: setting<"auto" | "find" | "walk">({
    flag: "crawler",
    type: "string",
    describe:
      "how the source is walked: find (GNU find, fastest on a local disk), walk (many calls in flight, fastest on NFS/EFS/FUSE), or auto (walk on network and FUSE filesystems, find elsewhere)",
    schema: z.enum(["auto", "find", "walk"], { error: "expected auto, find or walk" }),
    default: "auto",
  }),
  manifest: setting<string | undefined>({
    flag: "manifest",
    type: "string",
    describe: "take the TOC from this file, one path per line (relative to --source; a leading / is allowed)",
    schema: z.string().min(1, "expected a file path").optional(),
  }),
  modifiedAfter: setting<number | undefined>({
    flag: "modified-after",
    type: "string",
    describe:
      "only files and symlinks modified at or after this time (YYYY-MM-DD is midnight UTC); directories always go",
    schema: instant.optional(),
  }),
  include: setting<string[]>({
    flag: "include",
    type: "string",
    describe:
      "only paths matching this glob (repeat for several; * within a name, ** across directories); directories always go",
    schema: globs,
    defaultText: "everything",
  }),
  exclude: setting<string[]>({
    flag: "exclude",
    type: "string",
    describe: "leave out paths matching this glob (repeat for several); an excluded directory's contents too",
    schema: globs,
    defaultText: "nothing (hidden files are copied)",
  }),
};

export type TocSourceConfig = {
  readonly [K in keyof typeof tocSourceSettings]: z.output<(typeof tocSourceSettings)[K]["schema"]>;
};
