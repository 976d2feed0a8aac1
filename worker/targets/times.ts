/**
 * Times as the targets can hold them, never a whole second off. A source time is exact nanoseconds (a BigInt
 * from `lstat(…, { bigint: true })`); what a target keeps is less:
 * - Node's `utimes` takes a double of seconds, which libuv turns into a timespec (seconds toward zero, the
 *   fraction times 1e9 truncated, and in the libuv of Node 20 truncated again to the microsecond). A double near
 *   1.7e9 s is about 240 ns coarse, so the double nearest a time can be later than it, even in the next second.
 *   `utimesSeconds` picks the double whose timespec is the largest time not later than the source's.
 * - yas3fs keeps times as the doubles Python parses from the `attr` JSON. `attrSeconds` picks the double nearest
 *   the source's time that still floors to its second.
 * Pure functions; the one measurement (which rounding this runtime's libuv makes) is in fs-calls.ts.
 */

export const NS_PER_S = 1_000_000_000n;

/** Whole seconds (floored, so before 1970 they are negative) and the nanoseconds after them (0…999999999). */
export function splitNs(ns: bigint): { sec: bigint; frac: bigint } {
  let sec = ns / NS_PER_S;
  let frac = ns - sec * NS_PER_S;
  if (frac < 0n) {
    sec -= 1n;
    frac += NS_PER_S;
  }
  return { sec, frac };
}

/** The exact decimal of a time in seconds (`-1.5` for -1500000000 ns), without trailing zeros. */
export function exactSeconds(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const s = abs / NS_PER_S;
  const frac = (abs % NS_PER_S).toString().padStart(9, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${s}${frac ? `.${frac}` : ""}`;
}

/** The next double towards +∞ (`up`) or −∞. */
export function nextDouble(d: number, up: boolean): number {
  if (d === 0) return up ? Number.MIN_VALUE : -Number.MIN_VALUE;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, d);
  const bits = view.getBigUint64(0);
  // Away from zero is one more in the bits, towards zero one less (for either sign).
  view.setBigUint64(0, d > 0 === up ? bits + 1n : bits - 1n);
  return view.getFloat64(0);
}

/**
 * The double yas3fs should read for a time: the nearest to it whose floor is still its second (the nearest to
 * 1700000000.999999999 is 1700000001.0; the largest double below 1700000001 is taken instead).
 */
export function attrSeconds(ns: bigint): number {
  const { sec } = splitNs(ns);
  const d = Number(exactSeconds(ns));
  return Math.floor(d) > Number(sec) ? nextDouble(Number(sec + 1n), false) : d;
}

/** The `attr` text of a time: the shortest decimal that parses (in JS and Python alike) to `attrSeconds`. */
export function attrText(ns: bigint): string {
  return String(attrSeconds(ns));
}

/**
 * How this runtime's libuv turns a double into a timespec: `us` truncates to the microsecond (as Node 20's
 * does), `ns` keeps what the double holds (libuv has since dropped the truncation), `either` when it could not
 * be told (then a time must be right under both).
 */
export type UtimesRounding = "us" | "ns" | "either";

/** The time in nanoseconds that `utimes(p, d, d)` sets, as libuv computes it (uv__fs_to_timespec). */
export function utimesResult(d: number, rounding: UtimesRounding): bigint {
  if (rounding === "either") {
    const us = utimesResult(d, "us");
    const ns = utimesResult(d, "ns");
    // Before 1970 the microsecond truncation (towards zero) is the later one, after it the nanosecond one.
    if (us > ns) return us;
    return ns;
  }
  const s = Math.trunc(d);
  let n = Math.trunc((d - s) * 1e9);
  if (rounding === "us") n -= n % 1000;
  let sec = BigInt(s);
  if (n < 0) {
    n += 1e9;
    sec -= 1n;
  }
  return sec * NS_PER_S + BigInt(n);
}

/** The best time `utimes` can set for a source time: the largest that is not later than it. */
export function utimesBest(ns: bigint, rounding: UtimesRounding): bigint {
  return rounding === "ns" ? ns : ns - (splitNs(ns).frac % 1000n);
}

/**
 * The seconds to give Node's `utimes` for a source time, as a numeric string: Node takes a negative number as
 * "now", a string as given. Its double sets the largest time not later than the source's that libuv can make.
 */
export function utimesSeconds(ns: bigint, rounding: UtimesRounding): string {
  const best = utimesBest(ns, rounding);
  let d = Number(exactSeconds(best));
  // The nearest double may set a time a little later, or a little earlier, than the best: step to it.
  for (let i = 0; utimesResult(d, rounding) > ns; i++) {
    if (i > 64) throw new Error(`no time to set for ${ns} ns`);
    d = nextDouble(d, false);
  }
  for (let i = 0; i < 64 && utimesResult(d, rounding) < best; i++) {
    const up = nextDouble(d, true);
    if (utimesResult(up, rounding) > ns) break;
    d = up;
  }
  return String(d);
}

/** What the target is expected to show after `utimes` with `utimesSeconds`. */
export function utimesExpected(ns: bigint, rounding: UtimesRounding): bigint {
  return utimesResult(Number(utimesSeconds(ns, rounding)), rounding);
}

/**
 * How a time in a target compares with the source's: `null` when it is as the copy promised, else why not.
 * The whole second must always be the source's; `exact` (when given) is the one value allowed, else the time
 * must be within `slackNs` of the source's.
 */
export function timeProblem(
  got: bigint,
  want: bigint,
  o: { readonly exact?: bigint | undefined; readonly slackNs: bigint },
): string | null {
  const [g, w] = [splitNs(got), splitNs(want)];
  if (g.sec !== w.sec) return `second ${g.sec}, the source's is ${w.sec}`;
  if (o.exact !== undefined)
    return got === o.exact ? null : `${exactSeconds(got)} s, expected ${exactSeconds(o.exact)}`;
  const diff = got > want ? got - want : want - got;
  return diff < o.slackNs ? null : `${exactSeconds(got)} s, over ${o.slackNs} ns from ${exactSeconds(want)}`;
}
