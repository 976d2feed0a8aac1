/** Direct-S3 target, 4 KiB files: our whole load against `rclone copy --transfers 32`, same emulator. */
import { type BenchContext, OURS } from "./context.ts";
import { runOurs } from "./ours.ts";
import { rcloneCopy, rcloneMkBucket } from "./peers.ts";
import { ensureCommand, median } from "./proc.ts";
import { notMeasured, type Row, ratioRow } from "./table.ts";
import { ensureTree, fixedSize } from "./trees.ts";

const BUCKET = "bench";

export async function s3Row(ctx: BenchContext): Promise<Row> {
  const measure = `S3 target, ${ctx.sizes.s3Files.toLocaleString("en-US")} files of 4 KiB`;
  const why = await ensureCommand("rclone", "rclone");
  if (why) return notMeasured("s3-rclone", measure, ">= 1.0x", why);
  const tree = await ensureTree(ctx.treesDir, fixedSize(ctx.sizes.s3Files, 4096));
  await rcloneMkBucket(ctx.emulator.url, BUCKET);
  const ours: number[] = [];
  const rclone: number[] = [];
  for (let i = 0; i < ctx.sizes.s3Reps; i++) {
    const r = await runOurs(ctx.ours, {
      source: tree.root,
      target: `s3://${BUCKET}/ours-${i}`,
      ...OURS.s3,
      extra: ["--target-empty"],
      timeoutMs: 900_000,
    });
    ctx.oursRuns.push({ row: "s3", run: r });
    ours.push(r.writeEntriesPerSec);
    const c = await rcloneCopy(ctx.emulator.url, tree.root, `${BUCKET}/rclone-${i}`);
    rclone.push(tree.files / (c.ms / 1000));
    ctx.log(
      `s3 ${i + 1}: ours ${Math.round(ours.at(-1) ?? 0)}/s, rclone ${Math.round(rclone.at(-1) ?? 0)}/s`,
    );
  }
  return ratioRow({
    id: "s3-rclone",
    measure,
    unit: "objects/s",
    ours: median(ours),
    peer: "rclone copy --transfers 32",
    peerValue: median(rclone),
    minRatio: 1.0,
    note:
      `rclone ${"(Debian 1.60)"} copies less: no symlinks, no directory markers, no yas3fs attr (its figure is ` +
      `files only). Ours: ${OURS.s3.workers} workers x ${OURS.s3.concurrency}, --target-empty, objects ` +
      `(files and directory markers, each with its attr and CRC32) per second over the WRITE phase; rclone: ` +
      `wall time. Same emulator (fauxqs, 127.0.0.1), fresh prefix each time. ${tree.spec}. ` +
      `Medians of ${ctx.sizes.s3Reps}, alternating.`,
    detail: { tree, ours, rclone },
  });
}
