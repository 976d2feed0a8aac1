/**
 * A real tree that no one here made: a copy of a directory of the operating system (`/usr/share` of the
 * machine's distribution; `/usr/share/doc` in quick mode), to a directory against `rsync -a` and to S3 against
 * `rclone copy`, whole commands. The copy is made once under .bench/trees/ with `cp -a`, and its size mix is
 * printed with the row.
 */
import { existsSync, lstatSync, readdirSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { type BenchContext, freshDir, OURS } from "./context.ts";
import { runOurs } from "./ours.ts";
import { rcloneCopy, rcloneMkBucket, rsyncArchive } from "./peers.ts";
import { ensureCommand, median, mustRun } from "./proc.ts";
import { BUCKET } from "./row-s3.ts";
import { notMeasured, type Row, ratioRow } from "./table.ts";

export interface RealTree {
  readonly root: string;
  readonly from: string;
  readonly entries: number;
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly other: number;
  readonly bytes: number;
  /** Files by size: [label, count, bytes]. */
  readonly mix: readonly (readonly [string, number, number])[];
}

const BUCKETS: readonly (readonly [string, number])[] = [
  ["empty", 1],
  ["< 4 KiB", 4096],
  ["4-64 KiB", 65536],
  ["64 KiB-1 MiB", 1 << 20],
  ["1-8 MiB", 8 << 20],
  [">= 8 MiB", Number.POSITIVE_INFINITY],
];

export async function ensureRealTree(ctx: BenchContext): Promise<RealTree | { reason: string }> {
  const from = ctx.sizes.realSource;
  if (!existsSync(from)) return { reason: `${from} does not exist on this machine` };
  const root = path.join(ctx.treesDir, `real${from.replaceAll("/", "-")}`);
  const marker = `${root}.json`;
  if (existsSync(marker)) return JSON.parse(await fs.readFile(marker, "utf8")) as RealTree;
  ctx.log(`copying ${from} to ${root} (once) …`);
  await fs.rm(root, { recursive: true, force: true });
  await fs.mkdir(root, { recursive: true });
  await mustRun("cp", ["-a", `${from}/.`, root]);
  const tree = census(root, from);
  await fs.writeFile(marker, JSON.stringify(tree));
  return tree;
}

function census(root: string, from: string): RealTree {
  let files = 0;
  let dirs = 0;
  let symlinks = 0;
  let other = 0;
  let bytes = 0;
  const mix = BUCKETS.map(([label]) => [label, 0, 0] as [string, number, number]);
  const walk = (dir: string) => {
    dirs++;
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) symlinks++;
      else if (st.isFile()) {
        files++;
        bytes += st.size;
        const i = BUCKETS.findIndex(([, below]) => st.size < below);
        const b = mix[i] as [string, number, number];
        b[1]++;
        b[2] += st.size;
      } else other++;
    }
  };
  walk(root);
  return { root, from, entries: files + dirs + symlinks + other, files, dirs, symlinks, other, bytes, mix };
}

export function describeTree(t: RealTree): string {
  const mix = t.mix
    .filter(([, n]) => n > 0)
    .map(([label, n, b]) => `${label} ${n.toLocaleString("en-US")} (${(b / 1e6).toFixed(0)} MB)`)
    .join(", ");
  return (
    `a copy of ${t.from}: ${t.entries.toLocaleString("en-US")} entries, ${t.files.toLocaleString("en-US")} ` +
    `files, ${t.dirs.toLocaleString("en-US")} directories, ${t.symlinks.toLocaleString("en-US")} symlinks, ` +
    `${(t.bytes / 1e6).toFixed(0)} MB; files by size: ${mix}`
  );
}

export async function realRows(ctx: BenchContext): Promise<Row[]> {
  const dirMeasure = "real tree to a directory";
  const s3Measure = "real tree to S3";
  const tree = await ensureRealTree(ctx);
  if ("reason" in tree) {
    return [
      notMeasured("real-rsync", dirMeasure, ">= 1.0x", tree.reason),
      notMeasured("real-rclone", s3Measure, ">= 1.0x", tree.reason),
    ];
  }
  const rate = (ms: number) => tree.entries / (ms / 1000);
  const ours: number[] = [];
  const oursWrite: number[] = [];
  const rsync: number[] = [];
  for (let i = 0; i < ctx.sizes.realReps; i++) {
    const r = await runOurs(ctx.ours, {
      source: tree.root,
      target: await freshDir(ctx, "real-ours"),
      ...OURS.local,
      timeoutMs: 900_000,
    });
    ctx.oursRuns.push({ row: "real", run: r });
    ours.push(rate(r.wallMs));
    oursWrite.push(r.writeEntriesPerSec);
    rsync.push(rate((await rsyncArchive(tree.root, await freshDir(ctx, "real-rsync"))).ms));
    ctx.log(
      `real dir ${i + 1}: ours ${Math.round(ours.at(-1) ?? 0)}/s, rsync ${Math.round(rsync.at(-1) ?? 0)}/s`,
    );
  }
  const rows: Row[] = [
    ratioRow({
      id: "real-rsync",
      measure: `${dirMeasure} (${tree.entries.toLocaleString("en-US")} entries)`,
      unit: "entries/s",
      ours: median(ours),
      oursWriteOnly: median(oursWrite),
      peer: "rsync -a",
      peerValue: median(rsync),
      minRatio: 1.0,
      note:
        `${describeTree(tree)}. Whole commands, spawn to exit, both over all entries (so the ratio is the ratio ` +
        `of wall times). Ours: \`local\`, ${OURS.local.workers} workers x ${OURS.local.concurrency}, VALIDATE ` +
        `included. Medians of ${ctx.sizes.realReps}, alternating.`,
      detail: { tree, ours, oursWrite, rsync },
    }),
  ];
  const why = await ensureCommand("rclone", "rclone");
  if (why) {
    rows.push(notMeasured("real-rclone", s3Measure, ">= 1.0x", why));
    return rows;
  }
  await rcloneMkBucket(ctx.emulator.url, BUCKET);
  const oursS3: number[] = [];
  const oursS3Write: number[] = [];
  const rclone: number[] = [];
  for (let i = 0; i < ctx.sizes.realReps; i++) {
    const r = await runOurs(ctx.ours, {
      source: tree.root,
      target: `s3://${BUCKET}/real-ours-${i}`,
      ...OURS.s3,
      extra: ["--target-empty"],
      timeoutMs: 900_000,
    });
    ctx.oursRuns.push({ row: "real-s3", run: r });
    oursS3.push(rate(r.wallMs));
    oursS3Write.push(r.writeEntriesPerSec);
    rclone.push(rate((await rcloneCopy(ctx.emulator.url, tree.root, `${BUCKET}/real-rclone-${i}`)).ms));
    ctx.log(
      `real s3 ${i + 1}: ours ${Math.round(oursS3.at(-1) ?? 0)}/s, rclone ${Math.round(rclone.at(-1) ?? 0)}/s`,
    );
  }
  rows.push(
    ratioRow({
      id: "real-rclone",
      measure: `${s3Measure} (${tree.entries.toLocaleString("en-US")} entries)`,
      unit: "entries/s",
      ours: median(oursS3),
      oursWriteOnly: median(oursS3Write),
      peer: "rclone copy --transfers 32",
      peerValue: median(rclone),
      minRatio: 1.0,
      note:
        `the same tree into the emulator. Both figures are the tree's entries over the whole command (the ratio ` +
        `of wall times); rclone writes only the files (no symlinks, no directory markers, no attr, no VALIDATE). ` +
        `Ours: ${OURS.s3.workers} workers x ${OURS.s3.concurrency}, --target-empty. Medians of ${ctx.sizes.realReps}.`,
      detail: { oursS3, oursS3Write, rclone },
    }),
  );
  return rows;
}
