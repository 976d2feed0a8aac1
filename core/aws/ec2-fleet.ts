/**
 * The worker fleet on EC2: RunInstances from the stack's launch template (On-Demand or Spot), with the tags
 * the stack's IAM conditions require; DescribeInstances by tag; TerminateInstances.
 */
import {
  DescribeInstancesCommand,
  EC2Client,
  type Instance,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { AwsCallError } from "../errors.ts";
import type { Fleet, FleetInstance } from "../ports.ts";
import { withRetry } from "../retry.ts";

export interface Ec2FleetOptions {
  readonly launchTemplateId: string;
  /** Subnets to launch into, tried in order when one has no capacity; none: the account's default VPC. */
  readonly subnetIds: readonly string[];
  readonly spot: boolean;
}

/** Errors that mean "not here, not now": another subnet (another zone) may still have room. */
const CAPACITY_ERRORS = new Set([
  "InsufficientInstanceCapacity",
  "InsufficientFreeAddressesInSubnet",
  "InsufficientCapacity",
  "SpotMaxPriceTooLow",
  "MaxSpotInstanceCountExceeded",
  "Unsupported",
]);

const LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];

export class Ec2Fleet implements Fleet {
  constructor(
    private readonly client: EC2Client,
    private readonly o: Ec2FleetOptions,
  ) {}

  async launch(
    count: number,
    tags: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<FleetInstance[]> {
    const tagList = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    const launched: FleetInstance[] = [];
    const subnets: (string | undefined)[] = this.o.subnetIds.length > 0 ? [...this.o.subnetIds] : [undefined];
    let lastError: unknown;
    for (const subnetId of subnets) {
      const wanted = count - launched.length;
      if (wanted <= 0) break;
      try {
        const out = await this.client.send(
          new RunInstancesCommand({
            MinCount: 1,
            MaxCount: wanted,
            LaunchTemplate: { LaunchTemplateId: this.o.launchTemplateId, Version: "$Latest" },
            ...(subnetId ? { SubnetId: subnetId } : {}),
            TagSpecifications: [
              { ResourceType: "instance", Tags: tagList },
              { ResourceType: "volume", Tags: tagList },
            ],
            ...(this.o.spot
              ? {
                  InstanceMarketOptions: {
                    MarketType: "spot",
                    SpotOptions: { SpotInstanceType: "one-time", InstanceInterruptionBehavior: "terminate" },
                  },
                }
              : {}),
          }),
          { abortSignal: signal },
        );
        launched.push(...(out.Instances ?? []).map(toFleetInstance));
      } catch (err) {
        if (!CAPACITY_ERRORS.has(errorCode(err))) {
          throw new AwsCallError("RunInstances", `launch template ${this.o.launchTemplateId}`, {
            cause: err,
          });
        }
        lastError = err;
      }
    }
    if (launched.length === 0) {
      throw new AwsCallError("RunInstances", `launch template ${this.o.launchTemplateId} in every subnet`, {
        cause: lastError,
      });
    }
    return launched;
  }

  async describe(tags: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<FleetInstance[]> {
    const filters = [
      ...Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
      { Name: "instance-state-name", Values: LIVE_STATES },
    ];
    const out: FleetInstance[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await withRetry(
          () =>
            this.client.send(new DescribeInstancesCommand({ Filters: filters, NextToken: token }), {
              abortSignal: signal,
            }),
          { signal },
        );
        for (const r of page.Reservations ?? [])
          for (const i of r.Instances ?? []) out.push(toFleetInstance(i));
        token = page.NextToken;
      } while (token);
    } catch (err) {
      throw new AwsCallError("DescribeInstances", `instances tagged ${JSON.stringify(tags)}`, { cause: err });
    }
    return out;
  }

  async terminate(ids: readonly string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      try {
        await this.terminateChunk(chunk, signal);
      } catch (err) {
        throw new AwsCallError("TerminateInstances", chunk.join(", "), { cause: err });
      }
    }
  }

  private async terminateChunk(ids: readonly string[], signal?: AbortSignal): Promise<void> {
    const send = (InstanceIds: string[]) =>
      withRetry(
        () => this.client.send(new TerminateInstancesCommand({ InstanceIds }), { abortSignal: signal }),
        {
          signal,
        },
      );
    try {
      await send([...ids]);
    } catch (err) {
      // One unknown id fails the whole call: terminate the others one by one and skip the gone ones.
      if (errorCode(err) !== "InvalidInstanceID.NotFound" || ids.length === 1) {
        if (errorCode(err) === "InvalidInstanceID.NotFound") return;
        throw err;
      }
      for (const id of ids) {
        try {
          await send([id]);
        } catch (e) {
          if (errorCode(e) !== "InvalidInstanceID.NotFound") throw e;
        }
      }
    }
  }
}

function toFleetInstance(i: Instance): FleetInstance {
  return {
    id: i.InstanceId ?? "",
    state: (i.State?.Name ?? "pending") as FleetInstance["state"],
    privateDnsName: i.PrivateDnsName || undefined,
  };
}

function errorCode(err: unknown): string {
  if (!(err instanceof Error)) return "";
  return (err as { Code?: string }).Code ?? err.name;
}

/** An EC2 client; credentials from the SDK's default chain, also with an endpoint (an emulator). */
export function makeEc2Client(conn: { region: string; endpoint?: string | undefined }): EC2Client {
  return new EC2Client({
    region: conn.region,
    maxAttempts: 5,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
  });
}
