/** Reads a deployed stack's outputs through CloudFormation DescribeStacks. */
import {
  CloudFormationClient,
  DescribeStacksCommand,
  type DescribeStacksCommandOutput,
} from "@aws-sdk/client-cloudformation";
import { AwsCallError, ConfigError } from "../errors.ts";
import { withRetry } from "../retry.ts";

export async function readStackOutputs(
  client: CloudFormationClient,
  stackName: string,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  let out: DescribeStacksCommandOutput;
  try {
    out = await withRetry(
      () => client.send(new DescribeStacksCommand({ StackName: stackName }), { abortSignal: signal }),
      { signal },
    );
  } catch (err) {
    if (err instanceof Error && /does not exist/.test(err.message)) {
      throw new ConfigError(
        `--stack: got ${JSON.stringify(stackName)}; no such stack in this account and region (deploy it with npx cdk deploy, or give --region)`,
      );
    }
    throw new AwsCallError("DescribeStacks", stackName, { cause: err });
  }
  const stack = out.Stacks?.[0];
  if (!stack)
    throw new ConfigError(`--stack: got ${JSON.stringify(stackName)}; CloudFormation returned no stack`);
  const outputs: Record<string, string> = {};
  for (const o of stack.Outputs ?? [])
    if (o.OutputKey && o.OutputValue !== undefined) outputs[o.OutputKey] = o.OutputValue;
  return outputs;
}

/** A CloudFormation client; credentials from the SDK's default chain, also with an endpoint (an emulator). */
export function makeCloudFormationClient(conn: {
  region: string;
  endpoint?: string | undefined;
}): CloudFormationClient {
  return new CloudFormationClient({
    region: conn.region,
    maxAttempts: 5,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
  });
}
