/** The pure time conversions: what `utimes` is given, what `attr` carries, and how VALIDATE compares. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { attrTimeProblem } from "../../worker/targets/s3-target.ts";
import {
  attrSeconds,
  attrText,
  exactSeconds,
  nextDouble,
  splitNs,
  timeProblem,
  utimesExpected,
  utimesResult,
  utimesSeconds,
} from "../../worker/targets/times.ts";
import { parseAttr } from "../../worker/targets/yas3fs-format.ts";

const S = 1_000_000_000n;

/** Whole seconds around both 32-bit limits and before 1970, each with awkward sub-second parts. */
const SECONDS = [-315619200n, -1n, 0n, 1700000000n, 2147483647n, 2147483648n, 4294967295n, 4294967296n];
const FRACTIONS = [0n, 1n, 999n, 1000n, 1001n, 999999n, 500000000n, 999999000n, 999999001n, 999999999n];
const TIMES = SECONDS.flatMap((s) => FRACTIONS.map((f) => s * S + f));

/** The exact value of a double, in nanoseconds rounded to the nearest (toFixed is exact to its digits). */
const doubleNs = (d: number) => BigInt(d.toFixed(9).replace(".", ""));
/** The distance between neighbouring doubles at `d`, in nanoseconds (rounded up). */
const ulpNs = (d: number) => doubleNs(nextDouble(d, true)) - doubleNs(d) + 1n;

describe("times: splitting and printing", () => {
  it("splits a time into floored seconds and the nanoseconds after them, before 1970 too", () => {
    const table: [bigint, bigint, bigint][] = [
      [0n, 0n, 0n],
      [1_500_000_000n, 1n, 500_000_000n],
      [-1n, -1n, 999_999_999n],
      [-1_500_000_000n, -2n, 500_000_000n],
      [-315619200_000000000n, -315619200n, 0n],
    ];
    for (const [ns, sec, frac] of table) assert.deepEqual(splitNs(ns), { sec, frac }, `${ns}`);
  });

  it("prints the exact decimal of a time", () => {
    assert.equal(exactSeconds(1700000000_999999999n), "1700000000.999999999");
    assert.equal(exactSeconds(-1_500_000_000n), "-1.5");
    assert.equal(exactSeconds(-1n), "-0.000000001");
    assert.equal(exactSeconds(4294967296_000000000n), "4294967296");
  });
});

describe("times: the attr yas3fs reads", () => {
  it("never names another second, for any time and sub-second part, as JSON.parse and Python read it", () => {
    for (const ns of TIMES) {
      const { sec } = splitNs(ns);
      const d = JSON.parse(attrText(ns)) as number;
      assert.equal(d, attrSeconds(ns));
      assert.equal(BigInt(Math.floor(d)), sec, `${exactSeconds(ns)} written as ${attrText(ns)}`);
      // As close as a double allows: within one step between doubles of the exact time.
      const off = doubleNs(d) - ns;
      assert.ok((off < 0n ? -off : off) <= ulpNs(d), `${attrText(ns)} is ${off} ns from ${exactSeconds(ns)}`);
    }
  });

  it("writes 1700000000.999999999 as the largest double below the next second, not as 1700000001", () => {
    assert.equal(attrText(1700000000_999999999n), "1700000000.9999998");
    assert.equal(attrSeconds(1700000000_999999999n), nextDouble(1700000001, false));
    assert.equal(attrText(-315619199_000000001n), "-315619199.00000006");
    assert.equal(attrText(1600000000_123456789n), "1600000000.1234567");
    assert.equal(attrText(1600000000_000000000n), "1600000000");
  });

  it("lets VALIDATE refuse an attr that names the wrong second or is not the nearest double", () => {
    const src = 1700000000_999999999n;
    const attr = (t: string) => parseAttr(`{"st_mode":33188,"st_mtime":${t}}`);
    const ours = attr(attrText(src));
    assert.ok(ours);
    assert.equal(attrTimeProblem(ours, src), null);
    // What the copy wrote before: every nanosecond as a decimal, which parses to 1700000001.0.
    const old = attr("1700000000.999999999");
    assert.ok(old);
    assert.match(attrTimeProblem(old, src) ?? "", /reads as second 1700000001, the source's is 1700000000/);
    const coarse = attr("1700000000.9999");
    assert.ok(coarse);
    assert.match(attrTimeProblem(coarse, src) ?? "", /expected 1700000000.9999998/);
  });
});

describe("times: what utimes is given", () => {
  it("models libuv's conversion: towards zero, then to the microsecond, a negative fraction borrowing a second", () => {
    assert.equal(utimesResult(1700000000.999999, "us"), 1700000000_999999000n);
    assert.equal(utimesResult(1600000000.000001, "us"), 1600000000_000000000n); // the double is just below
    assert.equal(utimesResult(-1.5, "us"), -1_500_000_000n);
    assert.equal(utimesResult(-1.4999999, "us"), -1_499_999_000n); // towards zero: later
    assert.equal(utimesResult(1700000000.5, "ns"), 1700000000_500000000n);
  });

  it("gives a numeric string (a negative number would mean now), whose time is never later, nor another second", () => {
    for (const rounding of ["us", "ns", "either"] as const) {
      for (const ns of TIMES) {
        const arg = utimesSeconds(ns, rounding);
        assert.equal(typeof arg, "string");
        assert.ok(Number.isFinite(Number(arg)));
        const set = utimesResult(Number(arg), rounding);
        const name = `${exactSeconds(ns)} (${rounding}) given as ${arg}, sets ${exactSeconds(set)}`;
        assert.ok(set <= ns, name);
        assert.equal(splitNs(set).sec, splitNs(ns).sec, name);
        assert.ok(ns - set < 1000n, name);
        if (rounding === "us") assert.equal(set, ns - (splitNs(ns).frac % 1000n), `${name}: the microsecond`);
        if (rounding === "either")
          assert.ok(utimesResult(Number(arg), "us") <= ns && utimesResult(Number(arg), "ns") <= ns, name);
        assert.equal(utimesExpected(ns, rounding), set);
      }
    }
  });

  it("keeps what a double can hold where libuv keeps nanoseconds", () => {
    // Near 1.7e9 s doubles are 238 ns apart: the largest not later than .999999999 is .999999761.
    const set = utimesExpected(1700000000_999999999n, "ns");
    assert.ok(set <= 1700000000_999999999n && 1700000000_999999999n - set < 240n, `${set}`);
    assert.equal(utimesExpected(86400_123456789n, "ns"), 86400_123456789n);
  });
});

describe("times: VALIDATE on a directory target", () => {
  it("compares the whole second exactly and the fraction as the copy promised", () => {
    const src = 1700000000_999999999n;
    assert.match(timeProblem(1700000001_000000000n, src, { slackNs: 1000n }) ?? "", /second 1700000001/);
    assert.equal(timeProblem(1700000000_999999000n, src, { slackNs: 1000n }), null);
    assert.match(timeProblem(1700000000_999998000n, src, { slackNs: 1000n }) ?? "", /over 1000 ns/);
    assert.equal(
      timeProblem(1700000000_999999000n, src, { exact: 1700000000_999999000n, slackNs: 0n }),
      null,
    );
    assert.match(
      timeProblem(1700000000_999999999n, src, { exact: 1700000000_999999000n, slackNs: 0n }) ?? "",
      /expected 1700000000.999999/,
    );
    // Before 1970 the second is floored: -0.5 s is in second -1.
    assert.match(timeProblem(0n, -500_000_000n, { slackNs: S }) ?? "", /second 0, the source's is -1/);
  });
});
