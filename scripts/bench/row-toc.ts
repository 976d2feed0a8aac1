/**
 * The big TOC: whole loads of empty files (content does not matter here) to a directory target, for the
 * master's peak memory at two sizes and the time from the start of WRITE to the first file in the target.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { type BenchContext, freshDir, OURS } from "./context.ts";
import { type OursRun, runOurs } from "./ours.ts";
import type { Row } from "./table.ts";
import { emptyFiles, ensureTree, type Tree } from "./trees.ts";

const MB = 1e6;

export async function tocRows(ctx: BenchContext): Promise<Row[]> {
  const small = await ensureTree(ctx.treesDir, emptyFiles(ctx.sizes.tocSmallFiles));
  const big = await ensureTree(ctx.treesDir, emptyFiles(ctx.sizes.tocFiles));
  const load = async (tree: Tree) => {
    const target = await freshDir(ctx, "toc-ours");
    const run = await runOurs(ctx.ours, { source: tree.root, target, ...OURS.toc, timeoutMs: 3_600_000 });
    ctx.oursRuns.push({ row: "toc", run });
    ctx.log(
      `toc ${tree.files}: master peak ${(run.report.master.peakRssBytes / MB).toFixed(0)} MB, ` +
        `${Math.round(run.writeEntriesPerSec)} entries/s, ${(run.wallMs / 1000).toFixed(0)} s`,
    );
    return { run, target };
  };
  const s = await load(small);
  const b = await load(big);
  const peakSmall = s.run.report.master.peakRssBytes / MB;
  const peakBig = b.run.report.master.peakRssBytes / MB;
  const growth = peakBig / peakSmall;
  const quickNote = ctx.quick
    ? ` QUICK MODE: ${big.files.toLocaleString("en-US")} entries, not 1,000,000.`
    : "";
  const made =
    big.madeInSec > 0 ? ` The tree was made in ${big.madeInSec.toFixed(0)} s (kept for later runs).` : "";
  return [
    {
      id: "master-rss",
      measure: `master peak RSS, ${big.files.toLocaleString("en-US")}-entry TOC`,
      unit: "MB",
      ours: peakBig,
      peer: null,
      peerValue: null,
      ratio: null,
      target: "<= 256 MB",
      met: peakBig <= 256,
      note:
        `master.peakRssBytes of a whole load of ${big.spec} to a directory (${OURS.toc.workers} workers x ` +
        `${OURS.toc.concurrency}); one run, ${(b.run.wallMs / 1000).toFixed(0)} s.${quickNote}${made}`,
      detail: { tree: big, report: b.run.report },
    },
    {
      id: "master-rss-growth",
      measure: `master peak RSS, ${big.files.toLocaleString("en-US")} vs ${small.files.toLocaleString("en-US")} entries`,
      unit: "",
      ours: growth,
      peer: null,
      peerValue: null,
      ratio: null,
      target: "flat (<= 1.25)",
      met: growth <= 1.25,
      note: `${peakBig.toFixed(0)} MB vs ${peakSmall.toFixed(0)} MB: the ratio of the two peaks.`,
      detail: { small: s.run.report.master, big: b.run.report.master },
    },
    await firstFileRow(b.run, b.target, big),
  ];
}

/**
 * From the start of WRITE (the master's phase time) to the birth time of the first file in the target (statx
 * btime on this disk); the crawl's end is the last write of the master's TOC file.
 */
async function firstFileRow(run: OursRun, target: string, tree: Tree): Promise<Row> {
  const { first, fromCtime } = earliestFile(target);
  const firstSec = (first - run.writeStartMs) / 1000;
  const crawlSec = run.crawlEndMs === null ? null : (run.crawlEndMs - run.writeStartMs) / 1000;
  const during = crawlSec !== null && firstSec < crawlSec;
  return {
    id: "first-file",
    measure: "WRITE start to first file copied",
    unit: "s",
    ours: firstSec,
    peer: null,
    peerValue: null,
    ratio: null,
    target: "< 2 s, crawl running",
    met: firstSec < 2 && during,
    note:
      `from the report's WRITE start to the earliest ${fromCtime ? "change time (no birth time here)" : "birth time"} ` +
      `of a file in the target, in the ${tree.files.toLocaleString("en-US")}-entry run; the crawl ended ` +
      `${crawlSec === null ? "at an unknown time" : `${crawlSec.toFixed(1)} s after WRITE started`} (last write ` +
      `of the TOC file), so it was ${during ? "still" : "NOT"} running.`,
    detail: { firstSec, crawlSec },
  };
}

/** The earliest birth time (ms) of a file under `root` (GNU find 4.9 cannot print birth times; Node's stat can). */
function earliestFile(root: string): { first: number; fromCtime: boolean } {
  let first = Number.POSITIVE_INFINITY;
  let fromCtime = false;
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) pending.push(p);
      else if (e.isFile()) {
        const st = statSync(p);
        const born = st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs;
        if (st.birthtimeMs <= 0) fromCtime = true;
        if (born < first) first = born;
      }
    }
  }
  return { first, fromCtime };
}
