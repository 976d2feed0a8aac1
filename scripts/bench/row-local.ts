/**
 * Mounted-file-system target, small files: our whole command against `rsync -a` and `cp -a` from the same
 * source to fresh directories on the same disk; the same from a source with a filer's latency; and the fixed
 * cost of a tiny load.
 */
import path from "node:path";
import { type BenchContext, freshDir, OURS, SLOW_DELAY_US } from "./context.ts";
import { runOurs } from "./ours.ts";
import { cpArchive, rsyncArchive } from "./peers.ts";
import { median } from "./proc.ts";
import { buildSlowfs, mountSlow } from "./slowfs.ts";
import { notMeasured, type Row, ratioRow } from "./table.ts";
import { ensureTree, smallFiles, type Tree } from "./trees.ts";

const rate = (tree: Tree, ms: number) => (tree.files + tree.dirs) / (ms / 1000);

export async function localRows(ctx: BenchContext): Promise<Row[]> {
  const tree = await ensureTree(ctx.treesDir, smallFiles(ctx.sizes.localFiles));
  const ours: number[] = [];
  const oursWrite: number[] = [];
  const rsync: number[] = [];
  const cp: number[] = [];
  for (let i = 0; i < ctx.sizes.localReps; i++) {
    const r = await runOurs(ctx.ours, {
      source: tree.root,
      target: await freshDir(ctx, "local-ours"),
      ...OURS.local,
      timeoutMs: 600_000,
    });
    ctx.oursRuns.push({ row: "local", run: r });
    ours.push(r.entriesPerSec);
    oursWrite.push(r.writeEntriesPerSec);
    rsync.push(rate(tree, (await rsyncArchive(tree.root, await freshDir(ctx, "local-rsync"))).ms));
    cp.push(rate(tree, (await cpArchive(tree.root, await freshDir(ctx, "local-cp"))).ms));
    ctx.log(
      `local ${i + 1}: ours ${Math.round(ours.at(-1) ?? 0)}/s (${((r.wallMs ?? 0) / 1000).toFixed(2)} s), ` +
        `rsync ${Math.round(rsync.at(-1) ?? 0)}/s, cp ${Math.round(cp.at(-1) ?? 0)}/s`,
    );
  }
  const common = { unit: "entries/s", ours: median(ours), oursWriteOnly: median(oursWrite) };
  const how =
    `${tree.spec}, ${(tree.bytes / 1e6).toFixed(0)} MB, local disk to local disk. Every figure is entries over ` +
    `the whole command, spawn to exit (ours: \`local\`, its master, ${OURS.local.workers} workers x ` +
    `${OURS.local.concurrency}, VALIDATE included; the second column is our WRITE phase alone). ` +
    `Medians of ${ctx.sizes.localReps}, alternating.`;
  return [
    ratioRow({
      ...common,
      id: "local-rsync",
      measure: `fs target, ${tree.files.toLocaleString("en-US")} small files`,
      peer: "rsync -a",
      peerValue: median(rsync),
      minRatio: 1.0,
      note: how,
      detail: { tree, ours, oursWrite, rsync },
    }),
    ratioRow({
      ...common,
      id: "local-cp",
      measure: `fs target, ${tree.files.toLocaleString("en-US")} small files`,
      peer: "cp -a",
      peerValue: median(cp),
      minRatio: null,
      note: "same runs as the row above; cp -a as a second peer (no target set for it).",
      detail: { cp },
    }),
  ];
}

/** A 10-file load, start to exit: what every load pays before and after its files. */
export async function fixedCostRow(ctx: BenchContext): Promise<Row> {
  const tree = await ensureTree(ctx.treesDir, smallFiles(10));
  const ours: number[] = [];
  for (let i = 0; i < ctx.sizes.fixedReps; i++) {
    const r = await runOurs(ctx.ours, {
      source: tree.root,
      target: await freshDir(ctx, "fixed-ours"),
      ...OURS.local,
      timeoutMs: 120_000,
    });
    ours.push(r.wallMs / 1000);
  }
  const s = median(ours);
  return {
    id: "fixed-cost",
    measure: `fixed cost: a ${tree.files}-file load, start to exit`,
    unit: "s",
    ours: s,
    peer: null,
    peerValue: null,
    ratio: null,
    target: "<= 1.0 s",
    met: s <= 1.0,
    note:
      `\`local\` with ${OURS.local.workers} workers against the benchmark's emulator (already running), ` +
      `VALIDATE and the report included. Median of ${ctx.sizes.fixedReps}: ${ours.map((x) => x.toFixed(2)).join(", ")} s.`,
    detail: { tree, ours },
  };
}

export async function slowSourceRow(ctx: BenchContext): Promise<Row> {
  const measure = `fs target, source with ${SLOW_DELAY_US / 1000} ms per operation`;
  const built = await buildSlowfs(ctx.binDir);
  if ("reason" in built) return notMeasured("slow-rsync", measure, ">= 8.0x", built.reason);
  const tree = await ensureTree(ctx.treesDir, smallFiles(ctx.sizes.slowFiles));
  const mnt = await mountSlow(built.binary, tree.root, path.join(ctx.scratchDir, "slow-mnt"), SLOW_DELAY_US);
  const ours: number[] = [];
  const oursWrite: number[] = [];
  const rsync: number[] = [];
  try {
    for (let i = 0; i < ctx.sizes.slowReps; i++) {
      const r = await runOurs(ctx.ours, {
        source: mnt.mountpoint,
        target: await freshDir(ctx, "slow-ours"),
        ...OURS.slow,
        timeoutMs: 900_000,
      });
      ctx.oursRuns.push({ row: "slow", run: r });
      ours.push(r.entriesPerSec);
      oursWrite.push(r.writeEntriesPerSec);
      rsync.push(rate(tree, (await rsyncArchive(mnt.mountpoint, await freshDir(ctx, "slow-rsync"))).ms));
      ctx.log(
        `slow source ${i + 1}: ours ${Math.round(ours.at(-1) ?? 0)}/s, rsync ${Math.round(rsync.at(-1) ?? 0)}/s`,
      );
    }
  } finally {
    await mnt.unmount();
  }
  return ratioRow({
    id: "slow-rsync",
    measure: `${measure}, ${tree.files.toLocaleString("en-US")} files`,
    unit: "entries/s",
    ours: median(ours),
    oursWriteOnly: median(oursWrite),
    peer: "rsync -a",
    peerValue: median(rsync),
    minRatio: 8.0,
    note:
      `source: scripts/bench/slowfs.c, a read-only FUSE passthrough (libfuse 3, up to 64 threads) that waits ` +
      `${SLOW_DELAY_US} us before every lookup/getattr, readdir, readlink, open, read and statfs (1 ms round ` +
      `trip, as a LAN filer); kernel attribute and entry caches 1 s. ${tree.spec}. Whole command, spawn to ` +
      `exit; ours: ${OURS.slow.workers} workers x ${OURS.slow.concurrency}, VALIDATE included (it reads the ` +
      `slow source again). Medians of ${ctx.sizes.slowReps}.`,
    detail: { tree, ours, oursWrite, rsync },
  });
}
