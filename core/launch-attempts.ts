/**
 * Where a fleet launch tries next, as a pure function of what it has tried: Spot in each subnet in the given
 * order (with `--spot`), then On-Demand in each subnet in that order (without `--spot`, or with
 * `--spot-fallback` once Spot is exhausted). The EC2 adapter (`core/aws/ec2-fleet.ts`) asks it after every
 * RunInstances and stops when it answers null.
 */

export type Market = "spot" | "on-demand";

export interface LaunchPolicy {
  /** Subnets in the order to try them; none: the account's default VPC (EC2 chooses the subnet). */
  readonly subnetIds: readonly string[];
  readonly spot: boolean;
  /** With `spot`: when no subnet has Spot capacity, launch the rest On-Demand. */
  readonly spotFallback: boolean;
}

export interface LaunchAttempt {
  readonly market: Market;
  /** Undefined: no subnet named (the default VPC). */
  readonly subnetId: string | undefined;
}

export type AttemptOutcome =
  | { readonly kind: "launched"; readonly count: number }
  | { readonly kind: "refused"; readonly code: string };

export interface TriedAttempt extends LaunchAttempt {
  readonly outcome: AttemptOutcome;
}

/**
 * What a RunInstances error means for the next attempt. `capacity`: not in this zone for this market now;
 * `spot-limit`: no more Spot instances in this account and region, whatever the zone; `subnet`: this subnet
 * cannot take the instance in either market (no free address, the type not offered in its zone); `other`:
 * not a question of capacity (a refusal, a bad template): the launch fails with it.
 */
export type LaunchErrorClass = "capacity" | "spot-limit" | "subnet" | "other";

const ERROR_CLASSES: Readonly<Record<string, LaunchErrorClass>> = {
  InsufficientInstanceCapacity: "capacity",
  InsufficientCapacity: "capacity",
  InsufficientHostCapacity: "capacity",
  SpotMaxPriceTooLow: "capacity",
  MaxSpotInstanceCountExceeded: "spot-limit",
  InsufficientFreeAddressesInSubnet: "subnet",
  Unsupported: "subnet",
};

export function classifyLaunchError(code: string): LaunchErrorClass {
  return ERROR_CLASSES[code] ?? "other";
}

/** Every attempt the policy allows, in order (before any is ruled out by what was tried). */
export function launchSequence(p: LaunchPolicy): LaunchAttempt[] {
  const subnets: (string | undefined)[] = p.subnetIds.length > 0 ? [...p.subnetIds] : [undefined];
  const markets: Market[] = p.spot ? (p.spotFallback ? ["spot", "on-demand"] : ["spot"]) : ["on-demand"];
  return markets.flatMap((market) => subnets.map((subnetId) => ({ market, subnetId })));
}

/** The next attempt for the `remaining` instances still wanted, or null: launched enough, or nothing left to try. */
export function nextLaunchAttempt(
  p: LaunchPolicy,
  tried: readonly TriedAttempt[],
  remaining: number,
): LaunchAttempt | null {
  if (remaining <= 0) return null;
  const refusedAs = (t: TriedAttempt, c: LaunchErrorClass) =>
    t.outcome.kind === "refused" && classifyLaunchError(t.outcome.code) === c;
  const spotLimited = tried.some((t) => t.market === "spot" && refusedAs(t, "spot-limit"));
  const unusable = new Set(
    tried.filter((t) => t.subnetId !== undefined && refusedAs(t, "subnet")).map((t) => t.subnetId),
  );
  for (const a of launchSequence(p)) {
    if (tried.some((t) => t.market === a.market && t.subnetId === a.subnetId)) continue;
    if (a.market === "spot" && spotLimited) continue;
    if (a.subnetId !== undefined && unusable.has(a.subnetId)) continue;
    return a;
  }
  return null;
}

/** One line per attempt, for an error or a note: `spot in subnet-1: InsufficientInstanceCapacity`. */
export function describeAttempts(tried: readonly TriedAttempt[]): string {
  return tried
    .map((t) => {
      const where = `${t.market} in ${t.subnetId ?? "the default VPC"}`;
      return t.outcome.kind === "launched"
        ? `${where}: ${t.outcome.count} launched`
        : `${where}: ${t.outcome.code}`;
    })
    .join("; ");
}
