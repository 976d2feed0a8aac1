/**
 * The configuration file (`--config FILE`): YAML or JSON (JSON is YAML), one mapping of settings, each under
 * its name (`concurrency`, `topicArn`) or its flag (`topic-arn`). It is a layer of its own in `parseConfig`:
 * flag, then environment variable, then the file, then the default. One file may serve every program: each
 * takes the settings it has; a name that no program has is an error (a typo must not pass silently).
 */
import fs from "node:fs";
import { parse } from "yaml";
import { ConfigError, errnoText } from "./errors.ts";
import type { Setting } from "./setting.ts";

export interface ConfigFileLayer {
  /** The file, as given: named in every error about one of its values. */
  readonly path: string;
  /** Every setting of the file, under the name or flag it was written with. */
  readonly values: Readonly<Record<string, unknown>>;
}

/** Reads and parses the file; a file that cannot be read or parsed, or is not a mapping, is a ConfigError. */
export function readConfigFile(file: string): ConfigFileLayer {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      `--config: got ${JSON.stringify(file)}; cannot read it (${errnoText(err)}): give a YAML or JSON file`,
    );
  }
  return parseConfigFile(text, file);
}

export function parseConfigFile(text: string, file: string): ConfigFileLayer {
  let doc: unknown;
  try {
    doc = parse(text, { prettyErrors: true });
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0];
    throw new ConfigError(`--config ${file}: not valid YAML or JSON: ${msg}`);
  }
  if (doc === null || doc === undefined) return { path: file, values: {} };
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new ConfigError(
      `--config ${file}: got ${JSON.stringify(doc)}; expected a mapping of settings such as "concurrency: 32"`,
    );
  return { path: file, values: doc as Record<string, unknown> };
}

/** The value the file gives a setting, under its name or its flag. */
export function fileValue(layer: ConfigFileLayer, key: string, flag: string): unknown {
  return Object.hasOwn(layer.values, key) ? layer.values[key] : layer.values[flag];
}

/** Names in the file that are the name or flag of no setting of any of the tables: one ConfigError for all. */
export function checkFileNames(
  layer: ConfigFileLayer,
  tables: readonly Readonly<Record<string, Setting<unknown>>>[],
): void {
  const known = new Set<string>();
  for (const t of tables)
    for (const [key, s] of Object.entries(t)) {
      known.add(key);
      known.add(s.flag);
    }
  const unknown = Object.keys(layer.values).filter((k) => !known.has(k));
  if (unknown.length === 0) return;
  const lines = unknown.map((k) => {
    const near = closest(k, [...known]);
    return `${k} in ${layer.path}: got ${JSON.stringify(layer.values[k])}; no program has this setting${near ? ` (did you mean ${near}?)` : ""}`;
  });
  throw new ConfigError(`invalid settings:\n  ${lines.join("\n  ")}`);
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
