/** yargs options generated from a settings table, so that flags, variables and help never disagree. */
import type { Options } from "yargs";
import type { Setting } from "../core/config.ts";

export function yargsOptions(table: Record<string, Setting<unknown>>): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const s of Object.values(table)) {
    const def =
      s.defaultText ??
      (s.default === undefined || typeof s.default === "function" ? undefined : String(s.default));
    out[s.flag] = {
      type: s.type,
      describe: s.env ? `${s.describe} [env ${s.env}]` : s.describe,
      ...(def === undefined ? {} : { defaultDescription: def }),
    };
  }
  return out;
}
