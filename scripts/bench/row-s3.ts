/**
 * Direct-S3 target, 4 KiB files: our whole command against `rclone copy --transfers 32`, same emulator; and
 * from the same runs, the CPU each spends per object.
 */
import { type BenchContext, OURS } from "./context.ts";
import { runOurs } from "./ours.ts";
import { rcloneCopy, rcloneMkBucket } from "./peers.ts";
import { ensureCommand, median } from "./proc.ts";
import { costRatioRow, notMeasured, type Row, ratioRow } from "./table.ts";
import { ensureTree, fixedSize } from "./trees.ts";

export const BUCKET = "bench";

export async function s3Rows(ctx: BenchContext): Promise<Row[]> {
  const measure = `S3 target, ${ctx.sizes.s3Files.toLocaleString("en-US")} files of 4 KiB`;
  const cpuMeasure = "CPU seconds per object to S3 (all our processes; rclone)";
  const why = await ensureCommand("rclone", "rclone");
  if (why) {
    return [
      notMeasured("s3-rclone", measure, ">= 1.5x", why),
      notMeasured("s3-cpu", cpuMeasure, "<= 1.0x", why),
    ];
  }
  const tree = await ensureTree(ctx.treesDir, fixedSize(ctx.sizes.s3Files, 4096));
  await rcloneMkBucket(ctx.emulator.url, BUCKET);
  const ours: number[] = [];
  const oursWrite: number[] = [];
  const oursCpu: number[] = [];
  const rclone: number[] = [];
  const rcloneCpu: number[] = [];
  for (let i = 0; i < ctx.sizes.s3Reps; i++) {
    const r = await runOurs(ctx.ours, {
      source: tree.root,
      target: `s3://${BUCKET}/ours-${i}`,
      ...OURS.s3,
      extra: ["--target-empty"],
      timeoutMs: 900_000,
    });
    ctx.oursRuns.push({ row: "s3", run: r });
    ours.push(r.entriesPerSec);
    oursWrite.push(r.writeEntriesPerSec);
    if (r.cpuSec !== null) oursCpu.push(r.cpuSec / r.report.entries);
    const c = await rcloneCopy(ctx.emulator.url, tree.root, `${BUCKET}/rclone-${i}`);
    rclone.push(tree.files / (c.ms / 1000));
    if (c.cpuSec !== null) rcloneCpu.push(c.cpuSec / tree.files);
    ctx.log(
      `s3 ${i + 1}: ours ${Math.round(ours.at(-1) ?? 0)}/s, ${((oursCpu.at(-1) ?? 0) * 1e3).toFixed(2)} ms CPU/object; ` +
        `rclone ${Math.round(rclone.at(-1) ?? 0)}/s, ${((rcloneCpu.at(-1) ?? 0) * 1e3).toFixed(2)} ms CPU/object`,
    );
  }
  const rows: Row[] = [
    ratioRow({
      id: "s3-rclone",
      measure,
      unit: "objects/s",
      ours: median(ours),
      oursWriteOnly: median(oursWrite),
      peer: "rclone copy --transfers 32",
      peerValue: median(rclone),
      minRatio: 1.5,
      note:
        `rclone (Debian 1.60) copies less: no symlinks, no directory markers, no yas3fs attr, no VALIDATE (its ` +
        `figure is files only). Whole command, spawn to exit: ours is \`local\` with ${OURS.s3.workers} workers ` +
        `x ${OURS.s3.concurrency}, --target-empty, objects (files and directory markers, each with its attr ` +
        `and CRC32) and the VALIDATE HEADs included; the second column is our WRITE phase alone. Same emulator ` +
        `(fauxqs, 127.0.0.1), fresh prefix each time. ${tree.spec}. Medians of ${ctx.sizes.s3Reps}, alternating.`,
      detail: { tree, ours, oursWrite, rclone },
    }),
  ];
  rows.push(
    oursCpu.length === 0 || rcloneCpu.length === 0
      ? notMeasured("s3-cpu", cpuMeasure, "<= 1.0x", "bash's times gave no figure")
      : costRatioRow({
          id: "s3-cpu",
          measure: cpuMeasure,
          unit: "ms",
          ours: median(oursCpu) * 1e3,
          peer: "rclone copy --transfers 32",
          peerValue: median(rcloneCpu) * 1e3,
          maxRatio: 1.0,
          note:
            `the runs of the row above: user + system CPU of the whole command and every process it waited ` +
            `for (ours: master and workers; the emulator excluded for both), per object it wrote (ours counts ` +
            `its directory markers as objects). Lower is better: the target is at most rclone's.`,
          detail: { oursCpu, rcloneCpu },
        }),
  );
  return rows;
}
