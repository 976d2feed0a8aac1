/**
 * A deployed stack's outputs as the master's settings: read through CloudFormation (`--stack NAME`) or from
 * the file `cdk deploy --outputs-file FILE` writes, and filled in for every setting not given as a flag.
 * Precedence: flag, then the stack's output, then the environment variable, then the default.
 */
import fs from "node:fs/promises";
import { makeCloudFormationClient, readStackOutputs } from "../core/aws/cloudformation-outputs.ts";
import { parseConfig } from "../core/config.ts";
import { STACK_OUTPUTS } from "../core/deployment.ts";
import { ConfigError } from "../core/errors.ts";
import { deploymentSettings } from "./settings.ts";

/** Which output fills which flag. */
export const OUTPUT_FLAGS: Readonly<Record<string, string>> = {
  [STACK_OUTPUTS.region]: "region",
  [STACK_OUTPUTS.topicArn]: "topic-arn",
  [STACK_OUTPUTS.tocQueueUrl]: "toc-queue-url",
  [STACK_OUTPUTS.reportQueueUrl]: "report-queue-url",
  [STACK_OUTPUTS.deadLetterQueueUrl]: "dead-letter-queue-url",
  [STACK_OUTPUTS.launchTemplateId]: "launch-template-id",
  [STACK_OUTPUTS.subnetIds]: "subnet-ids",
  [STACK_OUTPUTS.fleetName]: "fleet-name",
};

/** The flags with the stack's outputs filled in where no flag was given; unchanged without --stack/--outputs-file. */
export async function withDeployment(
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Record<string, unknown>> {
  const d = parseConfig(deploymentSettings, flags, env);
  if (!d.stack && !d.outputsFile) return { ...flags };
  let outputs: Record<string, string>;
  if (d.outputsFile) {
    const file = d.outputsFile;
    const text = await fs.readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(
        `--outputs-file: got ${JSON.stringify(file)}; cannot read it (${err.code ?? err.message})`,
      );
    });
    outputs = outputsFromFile(text, file, d.stack);
  } else {
    const client = makeCloudFormationClient({
      region: d.region,
      endpoint: d.cloudformationEndpointUrl ?? d.endpointUrl,
    });
    try {
      outputs = await readStackOutputs(client, d.stack as string);
    } finally {
      client.destroy();
    }
  }
  return fillFlags(flags, outputs, d.stack ?? d.outputsFile ?? "");
}

/** Fills every flag not given from its output; fails when the outputs are not those of a load stack. */
export function fillFlags(
  flags: Readonly<Record<string, unknown>>,
  outputs: Readonly<Record<string, string>>,
  from: string,
): Record<string, unknown> {
  const missing = [STACK_OUTPUTS.topicArn, STACK_OUTPUTS.tocQueueUrl, STACK_OUTPUTS.reportQueueUrl].filter(
    (k) => !outputs[k],
  );
  if (missing.length > 0) {
    throw new ConfigError(
      `${from}: the outputs lack ${missing.join(", ")}; expected the outputs of an s3-bucket-loader stack (npx cdk deploy)`,
    );
  }
  const out: Record<string, unknown> = { ...flags };
  for (const [output, flag] of Object.entries(OUTPUT_FLAGS)) {
    const value = outputs[output];
    if (value !== undefined && value !== "" && (out[flag] === undefined || out[flag] === ""))
      out[flag] = value;
  }
  return out;
}

/**
 * The outputs of one stack from a `cdk deploy --outputs-file` file (`{ "StackName": { "Key": "value" } }`):
 * the named stack, or the only one.
 */
export function outputsFromFile(text: string, file: string, stack?: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError(
      `--outputs-file: ${file} is not JSON; expected the file cdk deploy --outputs-file writes`,
    );
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new ConfigError(`--outputs-file: ${file} is not an object of stacks`);
  }
  const stacks = json as Record<string, unknown>;
  const names = Object.keys(stacks);
  const name = stack ?? (names.length === 1 ? names[0] : undefined);
  if (!name || !(name in stacks)) {
    throw new ConfigError(
      `--outputs-file: ${file} has the stacks ${names.join(", ") || "(none)"}; ${stack ? `not ${stack}` : "name one with --stack"}`,
    );
  }
  const outputs = stacks[name];
  if (!outputs || typeof outputs !== "object")
    throw new ConfigError(`--outputs-file: stack ${name} has no outputs`);
  return Object.fromEntries(
    Object.entries(outputs).filter((e): e is [string, string] => typeof e[1] === "string"),
  );
}
