/**
 * One setting of a program's table: its flag, its environment variable, its schema and its default. The
 * configuration (config.ts), the configuration file (config-file.ts) and the CLI's options all read this shape.
 */
import type { z } from "zod";
import type { EnvName } from "./env-names.ts";

export interface Setting<T> {
  readonly flag: string;
  readonly env?: EnvName;
  readonly describe: string;
  readonly type: "string" | "number" | "boolean";
  readonly schema: z.ZodType<T>;
  /** Applied when neither flag nor variable is given; a function for computed defaults. */
  readonly default?: T | ((env: Readonly<Record<string, string | undefined>>) => T);
  /** What to show as the default in help, when it is computed. */
  readonly defaultText?: string;
}

export type SettingsTable = Record<string, Setting<unknown>>;
export type ConfigOf<T extends SettingsTable> = {
  readonly [K in keyof T]: T[K] extends Setting<infer V> ? V : never;
};

/**
 * The command-line arguments that hand `values` to a program whose table is `table`: `--flag value` for each,
 * a true boolean as its bare flag, a list as the flag repeated. A false boolean, an empty string and an undefined value are left out: the
 * program then takes its own default (flags win over the environment and files, so nothing else is needed).
 */
export function settingArgs<T extends SettingsTable>(
  table: T,
  values: { readonly [K in keyof T]?: ConfigOf<T>[K] | undefined },
): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const s = table[key];
    if (!s) throw new Error(`${key} is not a setting of this program`);
    if (value === undefined || value === false || value === "") continue;
    if (Array.isArray(value)) for (const v of value) args.push(`--${s.flag}`, String(v));
    else if (value === true) args.push(`--${s.flag}`);
    else args.push(`--${s.flag}`, String(value));
  }
  return args;
}
