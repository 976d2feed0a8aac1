/** Crawl rate: the master's streaming crawl alone against `find SRC -printf '%s %p\n'`, warm caches. */
import path from "node:path";
import type { BenchContext } from "./context.ts";
import { findPrintf } from "./peers.ts";
import { median, mustRun } from "./proc.ts";
import { type Row, ratioRow } from "./table.ts";
import { emptyFiles, ensureTree } from "./trees.ts";

export async function crawlRow(ctx: BenchContext): Promise<Row> {
  const tree = await ensureTree(ctx.treesDir, emptyFiles(ctx.sizes.crawlFiles));
  const entries = tree.files + tree.dirs;
  const probe = path.join(ctx.repo, "scripts/bench/crawl-probe.ts");
  // One untimed pass of each so both start with the same warm caches.
  await findPrintf(tree.root);
  const ours: number[] = [];
  const peer: number[] = [];
  const walker: number[] = [];
  let crawler = "";
  for (let i = 0; i < ctx.sizes.crawlReps; i++) {
    const r = await mustRun(process.execPath, ["--import", "tsx", probe, tree.root], { cwd: ctx.repo });
    const p = JSON.parse(r.stdout) as { crawler: string; entries: number; ms: number };
    crawler = p.crawler;
    ours.push(p.entries / (p.ms / 1000));
    // The walker too (what `auto` takes on network filesystems), for the record; not the row's figure.
    const w = await mustRun(process.execPath, ["--import", "tsx", probe, tree.root, "walk"], {
      cwd: ctx.repo,
    });
    const wp = JSON.parse(w.stdout) as { entries: number; ms: number };
    walker.push(wp.entries / (wp.ms / 1000));
    const f = await findPrintf(tree.root);
    peer.push(entries / (f.ms / 1000));
    ctx.log(
      `crawl ${i + 1}: ours (${crawler}) ${Math.round(ours.at(-1) ?? 0)}/s, walker ${Math.round(walker.at(-1) ?? 0)}/s, ` +
        `find ${Math.round(peer.at(-1) ?? 0)}/s`,
    );
  }
  return ratioRow({
    id: "crawl",
    measure: `crawl rate, ${tree.files.toLocaleString("en-US")} files`,
    unit: "entries/s",
    ours: median(ours),
    peer: "find -printf",
    peerValue: median(peer),
    minRatio: 1.0,
    note:
      `toc/crawl.ts (--crawler auto, which took ${crawler} here) timed alone in its own process (startup ` +
      `excluded), its find's output parsed into entries; the walker alone did ${Math.round(median(walker))}/s. find ` +
      `timed from spawn to exit, output discarded. ${tree.spec}; medians of ${ctx.sizes.crawlReps}, alternating.`,
    detail: { tree, crawler, ours, walker, peer },
  });
}
