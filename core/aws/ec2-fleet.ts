/**
 * The worker fleet on EC2: RunInstances from the stack's launch template (On-Demand or Spot, falling back
 * across subnets and markets as `core/launch-attempts.ts` decides), with the tags the stack's IAM conditions
 * require; DescribeInstances by tag; TerminateInstances.
 */
import {
  DescribeInstancesCommand,
  EC2Client,
  type Instance,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { AwsCallError } from "../errors.ts";
import {
  classifyLaunchError,
  describeAttempts,
  type LaunchAttempt,
  nextLaunchAttempt,
  type TriedAttempt,
} from "../launch-attempts.ts";
import type { Fleet, FleetInstance } from "../ports.ts";
import { withRetry } from "../retry.ts";

export interface Ec2FleetOptions {
  readonly launchTemplateId: string;
  /** Subnets to launch into, tried in order when one has no capacity; none: the account's default VPC. */
  readonly subnetIds: readonly string[];
  readonly spot: boolean;
  /** With `spot`: when no subnet has Spot capacity, launch the rest On-Demand. */
  readonly spotFallback?: boolean | undefined;
}

const LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];

export class Ec2Fleet implements Fleet {
  constructor(
    private readonly client: EC2Client,
    private readonly o: Ec2FleetOptions,
  ) {}

  /**
   * RunInstances until `count` are up or nothing is left to try: where to try next is `nextLaunchAttempt`'s
   * decision (other subnets, then On-Demand with `spotFallback`); an error that is not about capacity ends it.
   */
  async launch(
    count: number,
    tags: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<FleetInstance[]> {
    const policy = {
      subnetIds: this.o.subnetIds,
      spot: this.o.spot,
      spotFallback: this.o.spotFallback ?? false,
    };
    const launched: FleetInstance[] = [];
    const tried: TriedAttempt[] = [];
    let lastError: unknown;
    for (
      let a = nextLaunchAttempt(policy, tried, count);
      a !== null;
      a = nextLaunchAttempt(policy, tried, count - launched.length)
    ) {
      try {
        const started = await this.runInstances(a, count - launched.length, tags, signal);
        launched.push(...started);
        tried.push({ ...a, outcome: { kind: "launched", count: started.length } });
      } catch (err) {
        const code = errorCode(err);
        if (classifyLaunchError(code) === "other") {
          throw new AwsCallError("RunInstances", `launch template ${this.o.launchTemplateId}`, {
            cause: err,
          });
        }
        tried.push({ ...a, outcome: { kind: "refused", code } });
        lastError = err;
      }
    }
    if (launched.length === 0) {
      const where = policy.spot && policy.spotFallback ? "every subnet, Spot and On-Demand" : "every subnet";
      throw new AwsCallError(
        "RunInstances",
        `launch template ${this.o.launchTemplateId} in ${where} (${describeAttempts(tried)})`,
        { cause: lastError },
      );
    }
    return launched;
  }

  private async runInstances(
    a: LaunchAttempt,
    wanted: number,
    tags: Readonly<Record<string, string>>,
    signal: AbortSignal | undefined,
  ): Promise<FleetInstance[]> {
    const tagList = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    const out = await this.client.send(
      new RunInstancesCommand({
        MinCount: 1,
        MaxCount: wanted,
        LaunchTemplate: { LaunchTemplateId: this.o.launchTemplateId, Version: "$Latest" },
        ...(a.subnetId ? { SubnetId: a.subnetId } : {}),
        TagSpecifications: [
          { ResourceType: "instance", Tags: tagList },
          { ResourceType: "volume", Tags: tagList },
        ],
        ...(a.market === "spot"
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
    return (out.Instances ?? []).map((i) => ({ ...toFleetInstance(i), market: a.market }));
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
    market: i.InstanceLifecycle === "spot" ? "spot" : "on-demand",
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
