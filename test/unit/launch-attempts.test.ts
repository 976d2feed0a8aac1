/** Where a fleet launch tries next: subnets in order, Spot then On-Demand, each refusal read for what it rules out. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  classifyLaunchError,
  describeAttempts,
  type LaunchAttempt,
  type LaunchPolicy,
  launchSequence,
  nextLaunchAttempt,
  type TriedAttempt,
} from "../../core/launch-attempts.ts";

const two = ["subnet-a", "subnet-b"];
const spotOnly: LaunchPolicy = { subnetIds: two, spot: true, spotFallback: false };
const spotThenOnDemand: LaunchPolicy = { subnetIds: two, spot: true, spotFallback: true };
const onDemand: LaunchPolicy = { subnetIds: two, spot: false, spotFallback: false };
const spot = (subnetId?: string): LaunchAttempt => ({ market: "spot", subnetId });
const od = (subnetId?: string): LaunchAttempt => ({ market: "on-demand", subnetId });
const refused = (a: LaunchAttempt, code: string): TriedAttempt => ({
  ...a,
  outcome: { kind: "refused", code },
});
const launched = (a: LaunchAttempt, count: number): TriedAttempt => ({
  ...a,
  outcome: { kind: "launched", count },
});

describe("the launch fallback decision", () => {
  const table: {
    name: string;
    policy: LaunchPolicy;
    tried: TriedAttempt[];
    remaining: number;
    next: LaunchAttempt | null;
  }[] = [
    {
      name: "On-Demand starts in the first subnet",
      policy: onDemand,
      tried: [],
      remaining: 3,
      next: od("subnet-a"),
    },
    {
      name: "Spot starts in the first subnet",
      policy: spotOnly,
      tried: [],
      remaining: 3,
      next: spot("subnet-a"),
    },
    {
      name: "no capacity in a subnet: the next subnet, same market",
      policy: spotOnly,
      tried: [refused(spot("subnet-a"), "InsufficientInstanceCapacity")],
      remaining: 3,
      next: spot("subnet-b"),
    },
    {
      name: "a Spot price over the maximum in one zone: the next subnet",
      policy: spotOnly,
      tried: [refused(spot("subnet-a"), "SpotMaxPriceTooLow")],
      remaining: 3,
      next: spot("subnet-b"),
    },
    {
      name: "fewer started than asked: the rest are asked of the next subnet",
      policy: onDemand,
      tried: [launched(od("subnet-a"), 1)],
      remaining: 2,
      next: od("subnet-b"),
    },
    {
      name: "every subnet without Spot capacity and no --spot-fallback: nothing left to try",
      policy: spotOnly,
      tried: [
        refused(spot("subnet-a"), "InsufficientInstanceCapacity"),
        refused(spot("subnet-b"), "InsufficientInstanceCapacity"),
      ],
      remaining: 3,
      next: null,
    },
    {
      name: "every subnet without Spot capacity and --spot-fallback: On-Demand in the first subnet",
      policy: spotThenOnDemand,
      tried: [
        refused(spot("subnet-a"), "InsufficientInstanceCapacity"),
        refused(spot("subnet-b"), "InsufficientInstanceCapacity"),
      ],
      remaining: 3,
      next: od("subnet-a"),
    },
    {
      name: "the account's Spot limit reached: no other subnet for Spot, On-Demand at once with --spot-fallback",
      policy: spotThenOnDemand,
      tried: [refused(spot("subnet-a"), "MaxSpotInstanceCountExceeded")],
      remaining: 3,
      next: od("subnet-a"),
    },
    {
      name: "the account's Spot limit reached without --spot-fallback: nothing left to try",
      policy: spotOnly,
      tried: [refused(spot("subnet-a"), "MaxSpotInstanceCountExceeded")],
      remaining: 3,
      next: null,
    },
    {
      name: "a subnet without free addresses is not tried again On-Demand",
      policy: spotThenOnDemand,
      tried: [
        refused(spot("subnet-a"), "InsufficientFreeAddressesInSubnet"),
        refused(spot("subnet-b"), "InsufficientInstanceCapacity"),
      ],
      remaining: 3,
      next: od("subnet-b"),
    },
    {
      name: "an instance type its zone does not offer rules the subnet out for both markets",
      policy: spotThenOnDemand,
      tried: [refused(spot("subnet-a"), "Unsupported"), refused(spot("subnet-b"), "Unsupported")],
      remaining: 1,
      next: null,
    },
    {
      name: "Spot partly there: the rest On-Demand after the last subnet",
      policy: spotThenOnDemand,
      tried: [launched(spot("subnet-a"), 2), refused(spot("subnet-b"), "InsufficientInstanceCapacity")],
      remaining: 1,
      next: od("subnet-a"),
    },
    {
      name: "enough launched: no further attempt",
      policy: spotThenOnDemand,
      tried: [launched(spot("subnet-a"), 3)],
      remaining: 0,
      next: null,
    },
    {
      name: "no subnets named (the default VPC): one attempt per market",
      policy: { subnetIds: [], spot: true, spotFallback: true },
      tried: [refused(spot(), "InsufficientInstanceCapacity")],
      remaining: 2,
      next: od(),
    },
    {
      name: "the default VPC: a refusal about the subnet does not rule out On-Demand (EC2 chooses the subnet)",
      policy: { subnetIds: [], spot: true, spotFallback: true },
      tried: [refused(spot(), "Unsupported")],
      remaining: 2,
      next: od(),
    },
    {
      name: "On-Demand everywhere without capacity: nothing left to try",
      policy: onDemand,
      tried: [
        refused(od("subnet-a"), "InsufficientInstanceCapacity"),
        refused(od("subnet-b"), "InsufficientInstanceCapacity"),
      ],
      remaining: 1,
      next: null,
    },
  ];
  for (const row of table) {
    it(`${row.name}`, () => {
      assert.deepEqual(nextLaunchAttempt(row.policy, row.tried, row.remaining), row.next);
    });
  }

  it("orders every attempt Spot first, subnet by subnet, then On-Demand", () => {
    assert.deepEqual(launchSequence(spotThenOnDemand), [
      spot("subnet-a"),
      spot("subnet-b"),
      od("subnet-a"),
      od("subnet-b"),
    ]);
    assert.deepEqual(launchSequence(onDemand), [od("subnet-a"), od("subnet-b")]);
  });

  it("reads EC2's error codes: capacity, the Spot limit, the subnet, and everything else ends the launch", () => {
    assert.equal(classifyLaunchError("InsufficientInstanceCapacity"), "capacity");
    assert.equal(classifyLaunchError("SpotMaxPriceTooLow"), "capacity");
    assert.equal(classifyLaunchError("MaxSpotInstanceCountExceeded"), "spot-limit");
    assert.equal(classifyLaunchError("InsufficientFreeAddressesInSubnet"), "subnet");
    assert.equal(classifyLaunchError("UnauthorizedOperation"), "other");
    assert.equal(classifyLaunchError("InvalidLaunchTemplateId.NotFound"), "other");
  });

  it("describes what was tried, for the error that ends a launch", () => {
    assert.equal(
      describeAttempts([refused(spot("subnet-a"), "InsufficientInstanceCapacity"), launched(od(), 2)]),
      "spot in subnet-a: InsufficientInstanceCapacity; on-demand in the default VPC: 2 launched",
    );
  });
});
