/**
 * One typed configuration per program, parsed once at the edge. Each setting is declared once, with its flag,
 * its environment variable, its schema and its default; the CLI builds its options from the same table.
 * Precedence: flag, then environment variable, then the configuration file (`--config FILE`), then default.
 * The tables stand beside their programs (worker/settings.ts, master/settings.ts, local/settings.ts, …); here
 * are the parse and the settings they share (connection, channels, source, log format).
 */
import os from "node:os";
import { z } from "zod";
import { type ConfigFileLayer, fileValue, readConfigFile } from "./config-file.ts";
import { RUN_ID_SHAPE } from "./deployment.ts";
import { ENV } from "./env-names.ts";
import { ConfigError } from "./errors.ts";
import { isS3Url, parseS3Url } from "./s3-url.ts";
import type { ConfigOf, Setting, SettingsTable as Table } from "./setting.ts";
import { nonEmpty, url } from "./setting-schemas.ts";

export type { ConfigOf, Setting } from "./setting.ts";

export const setting = <T>(s: Setting<T>): Setting<T> => s;

export const queueUrl = z
  .string({ error: "expected an SQS queue URL" })
  .regex(
    /^https?:\/\/\S+\/\d+\/[\w-]{1,80}$/,
    "expected an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
  );
export const topicArn = z
  .string({ error: "expected an SNS topic ARN" })
  .regex(
    /^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]{1,256}$/,
    "expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
  );
export const runIdSchema = z
  .string()
  .regex(
    new RegExp(RUN_ID_SHAPE),
    "expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

/** A directory, or s3://BUCKET[/PREFIX] with a valid bucket name. */
export const location = nonEmpty("a directory or s3://BUCKET/PREFIX").refine(
  (v) => {
    if (!isS3Url(v)) return true;
    try {
      parseS3Url(v);
      return true;
    } catch {
      return false;
    }
  },
  {
    message:
      "expected s3://BUCKET[/PREFIX] with a valid bucket name (3-63 lower-case letters, digits, '.', '-')",
  },
);

// ---- settings shared by the programs ----

export const connection = {
  region: setting({
    flag: "region",
    env: ENV.region,
    type: "string",
    describe: "AWS region",
    schema: nonEmpty("a region such as us-east-1"),
    default: "us-east-1",
  }),
  endpointUrl: setting<string | undefined>({
    flag: "endpoint-url",
    env: ENV.endpointUrl,
    type: "string",
    describe: "an AWS-compatible endpoint (an emulator); unset for AWS",
    schema: url.optional(),
  }),
};

export const channels = {
  topicArn: setting({
    flag: "topic-arn",
    env: ENV.topicArn,
    type: "string",
    describe: "the control topic (SNS)",
    schema: topicArn,
  }),
  tocQueueUrl: setting({
    flag: "toc-queue-url",
    env: ENV.tocQueueUrl,
    type: "string",
    describe: "the TOC queue (SQS)",
    schema: queueUrl,
  }),
  reportQueueUrl: setting({
    flag: "report-queue-url",
    env: ENV.reportQueueUrl,
    type: "string",
    describe: "the queue workers report to (SQS)",
    schema: queueUrl,
  }),
};

export const logFormat = setting<"text" | "json">({
  flag: "log-format",
  env: ENV.logFormat,
  type: "string",
  describe: "log lines as text or JSON",
  schema: z.enum(["text", "json"], { error: "expected text or json" }),
  default: "text",
});

export const source = setting({
  flag: "source",
  env: ENV.source,
  type: "string",
  describe:
    "the source: a directory (every worker sees the same tree there), or s3://BUCKET[/PREFIX] to mirror a bucket",
  schema: location,
});

/**
 * Reads flags, then environment, then the configuration file, then defaults, and validates; every problem is
 * named in one ConfigError. The file is `file` when given, else the one `flags.config` names (`--config`).
 */
export function parseConfig<T extends Table>(
  table: T,
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  file?: ConfigFileLayer,
): ConfigOf<T> {
  const layer =
    file ?? (typeof flags.config === "string" && flags.config ? readConfigFile(flags.config) : undefined);
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(table)) {
    const fromFlag = flags[s.flag] ?? flags[key];
    const fromEnv = s.env ? env[s.env] : undefined;
    const fromFile = layer ? fileValue(layer, key, s.flag) : undefined;
    const given = (v: unknown) => v !== undefined && v !== "";
    const raw = given(fromFlag)
      ? fromFlag
      : given(fromEnv)
        ? fromEnv
        : given(fromFile) && fromFile !== null
          ? fromFile
          : typeof s.default === "function"
            ? (s.default as (e: typeof env) => unknown)(env)
            : s.default;
    const parsed = s.schema.safeParse(raw);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      const flagged = s.env ? `--${s.flag} (or ${s.env})` : `--${s.flag}`;
      const where =
        layer && !given(fromFlag) && !given(fromEnv) && given(fromFile)
          ? `${key} in ${layer.path} (${flagged})`
          : flagged;
      const got = raw === undefined ? "nothing" : JSON.stringify(raw);
      problems.push(`${where}: got ${got}; ${parsed.error.issues[0]?.message ?? "invalid"}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid settings:\n  ${problems.join("\n  ")}`);
  return out as ConfigOf<T>;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  return `${stamp}-${Math.random().toString(16).slice(2, 6)}`;
}

export function defaultStateDir(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_STATE_HOME || `${os.homedir()}/.local/state`;
  return `${base}/s3-bucket-loader`;
}
