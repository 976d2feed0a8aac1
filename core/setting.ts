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
