/**
 * How many workers the run needs: a pure function of the measured rates, the work left, the clock, the money
 * and the prices. The fleet calls it every poll and performs what it says (launch, drain or hold); the
 * decision and its reason are one line of the log and one row of the report's fleet timeline.
 *
 * The model. Each working worker goes at the rate measured on it so far (entries/s and bytes/s of the
 * batches it finished); a worker still booting, or one that has no result yet, is counted at the median of the
 * measured ones, after the boot time. A fleet of n workers does min(n × entries/s, S3's per-prefix PUT ceiling)
 * and n × bytes/s; the rest takes as long as the slower of the two. While the crawl runs, the fleet cannot go
 * faster than the crawl finds entries: when it keeps up already, more workers would not help. Money: each
 * instance costs its hourly price per second it runs (at least a minute), plus the requests the rest of the run
 * makes, which do not depend on the fleet's size.
 */

/** `--deadline`: a duration from the start (`90m`, `2h`, `1h30m`, `45s`) or an ISO time with its zone. */
export const DEADLINE_SHAPE =
  /^(?:(?=\d)(?:\d+h)?(?:\d+m)?(?:\d+s)?|\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))$/;

/** The deadline's time: `startMs` plus a duration, or the time given. Throws on text of another shape. */
export function deadlineAt(text: string, startMs: number): number {
  if (!DEADLINE_SHAPE.test(text)) throw new Error(`not a deadline: ${JSON.stringify(text)}`);
  if (text.includes("T")) return Date.parse(text);
  const part = (unit: string) => Number(new RegExp(`(\\d+)${unit}`).exec(text)?.[1] ?? 0);
  return startMs + ((part("h") * 60 + part("m")) * 60 + part("s")) * 1000;
}

/** S3's PUT/COPY/POST/DELETE rate per partitioned prefix before it scales out. */
export const S3_PREFIX_PUTS_PER_SEC = 3_500;
/** EC2 bills each instance for one minute at least. */
const MIN_BILLED_SEC = 60;
/** A smaller fleet is chosen only when it still ends this share of the time left before the deadline. */
const DRAIN_MARGIN = 0.2;

export interface MeasuredWorker {
  readonly id: string;
  /** Entries per second over the batches it finished; null before its first result. */
  readonly entriesPerSec: number | null;
  readonly bytesPerSec: number | null;
}

export interface SizingInput {
  readonly nowMs: number;
  /** When the run must be done; null: no deadline (the budget decides). */
  readonly deadlineMs: number | null;
  /** Dollars the whole run may cost (instances and requests); null: no budget. */
  readonly budgetDollars: number | null;
  readonly maxWorkers: number;
  /** Workers that announced themselves and work (not draining, not lost). */
  readonly workers: readonly MeasuredWorker[];
  /** Instances launched whose worker has not announced itself yet. */
  readonly booting: number;
  /** WRITE entries (and their bytes) not done yet, and the entries VALIDATE will check after them. */
  readonly remaining: { readonly entries: number; readonly bytes: number; readonly validateEntries: number };
  /** The crawl: done, or still finding entries at this rate (with a total expected from the plan, if any). */
  readonly crawl:
    | { readonly done: true }
    | {
        readonly done: false;
        readonly entriesPerSec: number;
        /** Entries found so far. */
        readonly found: number;
        /** The total the plan expects, if known: the rest is extrapolated at the crawl's rate. */
        readonly expectedEntries?: number | null;
      };
  /** Spent so far: the instances' time and the requests made. */
  readonly spentDollars: number;
  readonly instancePerHour: number;
  /** The requests one entry still costs: its PUTs (and HEAD before it) and its VALIDATE HEAD. */
  readonly requestDollarsPerEntry: number;
  readonly bootSec: number;
  readonly s3PutsPerSec?: number;
}

export type SizingAction =
  | { readonly type: "launch"; readonly count: number }
  | { readonly type: "drain"; readonly ids: readonly string[] }
  | { readonly type: "hold" };

export interface SizingDecision {
  readonly action: SizingAction;
  /** The fleet the decision aims at (working and booting, draining ones not counted). */
  readonly workers: number;
  /** When the run ends with that fleet, by the model; null when it cannot be told yet. */
  readonly forecastEndMs: number | null;
  /** What the whole run costs with that fleet, by the model; null when it cannot be told yet. */
  readonly forecastDollars: number | null;
  /** Set when the deadline cannot be met: said at once, and the run goes on at the best size allowed. */
  readonly deadlineMissed: boolean;
  readonly reason: string;
}

interface Rates {
  readonly entriesPerSec: number;
  readonly bytesPerSec: number;
}

/** What every branch of the decision shares: the input, the median rates, the caps and how they read. */
interface Ctx {
  readonly i: SizingInput;
  readonly current: number;
  readonly perWorker: Rates;
  readonly ceiling: number;
  /** The most workers that help: `--max-workers`, or fewer when S3's PUT ceiling is reached first. */
  readonly cap: number;
  readonly capNote: string;
  /** The largest fleet within the budget (null without one), and the most the decision may go to. */
  readonly affordable: number | null;
  readonly limit: number;
  readonly budgetNote: string;
  readonly plan: (n: number) => { endMs: number; dollars: number };
}

export function decide(i: SizingInput): SizingDecision {
  const current = i.workers.length + i.booting;
  const measured = i.workers.filter((w) => w.entriesPerSec !== null && w.entriesPerSec > 0);
  if (measured.length === 0) {
    return hold(current, "no rate measured yet: waiting for the first results");
  }
  const perWorker: Rates = {
    entriesPerSec: median(measured.map((w) => w.entriesPerSec as number)),
    bytesPerSec: median(measured.map((w) => w.bytesPerSec ?? 0)),
  };
  const ceiling = i.s3PutsPerSec ?? S3_PREFIX_PUTS_PER_SEC;
  // Beyond this many workers, S3's per-prefix PUT rate, not the fleet, sets the pace.
  const usefulMax = Math.max(1, Math.ceil(ceiling / perWorker.entriesPerSec));
  const cap = Math.min(i.maxWorkers, usefulMax);
  const affordable = budgetSize(i, perWorker, ceiling, cap);
  const c: Ctx = {
    i,
    current,
    perWorker,
    ceiling,
    cap,
    capNote:
      usefulMax < i.maxWorkers
        ? `; S3's ${ceiling} PUT/s per prefix caps the fleet at ${usefulMax} (${round(perWorker.entriesPerSec)} entries/s each)`
        : "",
    affordable,
    limit: affordable ?? cap,
    budgetNote:
      affordable !== null && affordable < cap
        ? `; the budget $${round(i.budgetDollars ?? 0)} allows ${affordable}`
        : "",
    plan: (n) => forecast(i, perWorker, n, ceiling),
  };
  if (!i.crawl.done && !i.crawl.expectedEntries) return whileCrawling(c, i.crawl.entriesPerSec);
  if (i.deadlineMs === null) {
    // A budget only: go as fast as it allows.
    const end = c.plan(c.limit);
    return act(c, c.limit, end, false, `the fastest fleet the budget allows${c.capNote}${c.budgetNote}`);
  }
  return toDeadline(c, i.deadlineMs);
}

/** While the crawl runs and its total is not known: keep up with the crawl, and no more. */
function whileCrawling(c: Ctx, crawlPerSec: number): SizingDecision {
  const fleetRate = Math.min(c.i.workers.length * c.perWorker.entriesPerSec, c.ceiling);
  if (crawlPerSec <= fleetRate) {
    return hold(
      c.current,
      `the crawl is the bottleneck: it finds ${round(crawlPerSec)} entries/s and the fleet does ${round(fleetRate)}; more workers would not help`,
    );
  }
  const keepUp = Math.min(c.cap, Math.ceil(crawlPerSec / c.perWorker.entriesPerSec));
  const n = Math.min(keepUp, c.affordable ?? keepUp);
  const why = `the fleet falls behind the crawl (${round(crawlPerSec)} entries/s found, ${round(fleetRate)} done)${c.capNote}`;
  return n > c.current ? act(c, n, null, false, `${why}: ${n} workers keep up`) : hold(c.current, why);
}

/** The fewest workers that meet the deadline within the budget; the best allowed, said at once, when none does. */
function toDeadline(c: Ctx, deadlineMs: number): SizingDecision {
  const meets = (n: number) => c.plan(n).endMs <= deadlineMs;
  let fewest: number | null = null;
  for (let n = 1; n <= c.limit && fewest === null; n++) if (meets(n)) fewest = n;
  const deadline = iso(deadlineMs);
  const now = c.plan(c.current);
  if (fewest === null) {
    const end = c.plan(c.limit);
    let enough: number | null = null;
    for (let n = c.limit + 1; n <= c.cap && enough === null; n++) if (meets(n)) enough = n;
    const why =
      enough !== null
        ? `the deadline ${deadline} cannot be met within the budget: ${enough} workers would meet it at $${round(c.plan(enough).dollars)}; running at the budget's size, ${c.limit}, to end at ${iso(end.endMs)}`
        : `the deadline ${deadline} cannot be met: even ${c.limit} workers end at ${iso(end.endMs)}${c.capNote}${c.budgetNote}`;
    return act(c, c.limit, end, true, why);
  }
  if (fewest > c.current) {
    const end = c.plan(fewest);
    return act(
      c,
      fewest,
      end,
      false,
      `${c.current} workers end at ${iso(now.endMs)}, after the deadline ${deadline}; ${fewest} end at ${iso(end.endMs)}${c.capNote}`,
    );
  }
  if (fewest < c.current && c.i.crawl.done) {
    // Ahead: drain only with a margin, so that a noisy rate does not make the fleet flap.
    const margin = (deadlineMs - c.i.nowMs) * DRAIN_MARGIN;
    let keep = c.current;
    for (let n = fewest; n < c.current && keep === c.current; n++) {
      if (c.plan(n).endMs <= deadlineMs - margin) keep = n;
    }
    if (keep < c.current) {
      const end = c.plan(keep);
      const why = `ahead of the deadline ${deadline}: ${keep} workers end at ${iso(end.endMs)}; draining ${c.current - keep}`;
      return act(c, keep, end, false, why);
    }
  }
  return {
    action: { type: "hold" },
    workers: c.current,
    forecastEndMs: now.endMs,
    forecastDollars: now.dollars,
    deadlineMissed: false,
    reason: `${c.current} workers end at ${iso(now.endMs)}, before the deadline ${deadline}`,
  };
}

/** Launch or drain from the current fleet to `n`; the workers drained are the slowest ones measured. */
function act(
  c: Ctx,
  n: number,
  end: { endMs: number; dollars: number } | null,
  missed: boolean,
  reason: string,
): SizingDecision {
  const { i, current } = c;
  const base = {
    workers: n,
    forecastEndMs: end?.endMs ?? null,
    forecastDollars: end?.dollars ?? null,
    deadlineMissed: missed,
    reason,
  };
  if (n > current) return { ...base, action: { type: "launch", count: n - current } };
  // Booting instances are not drained: they are not working yet, and draining needs a worker to tell.
  const drainable = Math.min(current - n, i.workers.length);
  if (n < current && drainable > 0) {
    const slowest = [...i.workers]
      .sort((a, b) => (a.entriesPerSec ?? 0) - (b.entriesPerSec ?? 0) || a.id.localeCompare(b.id))
      .slice(0, drainable)
      .map((w) => w.id);
    return { ...base, workers: current - drainable, action: { type: "drain", ids: slowest } };
  }
  return { ...base, workers: current, action: { type: "hold" } };
}

function hold(current: number, reason: string): SizingDecision {
  return {
    action: { type: "hold" },
    workers: current,
    forecastEndMs: null,
    forecastDollars: null,
    deadlineMissed: false,
    reason,
  };
}

/**
 * The end and the cost of the rest with `n` workers: the fleet working now goes on at its measured rate; the
 * workers beyond it (booting or to be launched) join after the boot time.
 */
function forecast(i: SizingInput, r: Rates, n: number, ceiling: number): { endMs: number; dollars: number } {
  const working = Math.min(n, i.workers.length);
  const joining = n - working;
  const future = i.crawl.done ? 0 : Math.max(0, (i.crawl.expectedEntries ?? 0) - i.crawl.found);
  const entries = i.remaining.entries + future;
  const bytesPerEntry = i.remaining.entries > 0 ? i.remaining.bytes / i.remaining.entries : 0;
  // Each entry costs its share of the slower resource: the fleet's entry rate or its byte rate.
  const secPerEntry = (k: number) => {
    if (k <= 0) return Number.POSITIVE_INFINITY;
    const byEntries = 1 / Math.min(k * r.entriesPerSec, ceiling);
    const byBytes = r.bytesPerSec > 0 ? bytesPerEntry / (k * r.bytesPerSec) : 0;
    return Math.max(byEntries, byBytes);
  };
  let sec: number;
  const boot = joining > 0 ? i.bootSec : 0;
  const duringBoot = working > 0 ? boot / secPerEntry(working) : 0;
  if (entries <= duringBoot) sec = entries * secPerEntry(working);
  else sec = boot + (entries - duringBoot) * secPerEntry(n);
  // VALIDATE checks every entry again; taken at the WRITE rate (a HEAD is quicker than a write: an upper bound).
  sec += i.remaining.validateEntries * secPerEntry(n);
  if (!i.crawl.done && i.crawl.entriesPerSec > 0 && future > 0) {
    sec = Math.max(sec, future / i.crawl.entriesPerSec + i.remaining.validateEntries * secPerEntry(n));
  }
  // Instances already launched (booting) have their first minute in the spent dollars: only the seconds from now
  // on are theirs here; EC2's minimum is billed to the ones still to launch.
  const booting = Math.min(joining, i.booting);
  const instanceSec = (working + booting) * sec + (joining - booting) * Math.max(MIN_BILLED_SEC, sec);
  const dollars =
    i.spentDollars + (instanceSec / 3600) * i.instancePerHour + entries * i.requestDollarsPerEntry;
  return { endMs: i.nowMs + sec * 1000, dollars };
}

/** The largest fleet (up to `cap`) whose run stays within the budget; null without a budget. */
function budgetSize(i: SizingInput, r: Rates, ceiling: number, cap: number): number | null {
  if (i.budgetDollars === null) return null;
  let best = 1;
  for (let n = 1; n <= cap; n++) {
    if (forecast(i, r, n, ceiling).dollars <= i.budgetDollars) best = n;
  }
  return Math.max(best, Math.min(1, cap));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
