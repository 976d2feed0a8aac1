/**
 * `npm run bench [-- --quick] [-- --only fixed,crawl,local,slow,s3,real,toc] [-- --out FILE] [-- --keep]`: our tool
 * against its peers on the same data in the same run; prints one table and writes the same figures as JSON.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type BenchContext, FULL, QUICK } from "./context.ts";
import { startBenchEmulator } from "./emulator.ts";
import { sqsRow, workerRssRow } from "./row-across.ts";
import { crawlRow } from "./row-crawl.ts";
import { fixedCostRow, localRows, slowSourceRow } from "./row-local.ts";
import { realRows } from "./row-real.ts";
import { s3Rows } from "./row-s3.ts";
import { tocRows } from "./row-toc.ts";
import { formatTable, notMeasured, type Row } from "./table.ts";

const ROWS: readonly { id: string; target: string; measure: (ctx: BenchContext) => Promise<Row | Row[]> }[] =
  [
    { id: "fixed", target: "<= 1.0 s", measure: fixedCostRow },
    { id: "crawl", target: ">= 1.0x", measure: crawlRow },
    { id: "local", target: ">= 1.0x", measure: localRows },
    { id: "slow", target: ">= 8.0x", measure: slowSourceRow },
    { id: "s3", target: ">= 1.5x", measure: s3Rows },
    { id: "real", target: ">= 1.0x", measure: realRows },
    { id: "toc", target: "<= 256 MB", measure: tocRows },
  ];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  const repo = fileURLToPath(new URL("../..", import.meta.url));
  const benchDir = path.join(repo, ".bench");
  const scratchDir = path.join(benchDir, "scratch");
  const out = values.out ?? path.join(benchDir, values.quick ? "results-quick.json" : "results.json");
  const only = values.only?.split(",") ?? ROWS.map((r) => r.id);
  if (!existsSync(path.join(repo, "dist/s3-bucket-loader.mjs"))) {
    throw new Error("dist/ is missing: run `npm run build` (npm run bench does it first)");
  }
  const started = performance.now();
  const log = (m: string) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0)}s] ${m}\n`);
  // Leftovers of an interrupted run go now, long before anything is timed.
  unmountLazily(path.join(scratchDir, "slow-mnt"));
  await fs.rm(scratchDir, { recursive: true, force: true });
  await fs.mkdir(path.join(scratchDir, "state"), { recursive: true });
  process.once("SIGINT", () => {
    unmountLazily(path.join(scratchDir, "slow-mnt"));
    process.exit(130);
  });

  const emulator = await startBenchEmulator();
  const ctx: BenchContext = {
    repo,
    quick: values.quick,
    sizes: values.quick ? QUICK : FULL,
    treesDir: path.join(benchDir, "trees"),
    binDir: path.join(benchDir, "bin"),
    scratchDir,
    emulator,
    ours: { repo, emulator, stateDir: path.join(scratchDir, "state") },
    oursRuns: [],
    log,
  };
  log(`${values.quick ? "quick" : "full"} mode; emulator ${emulator.url}; trees in ${ctx.treesDir}`);
  const rows: Row[] = [];
  try {
    for (const r of ROWS) {
      if (!only.includes(r.id)) continue;
      log(`row ${r.id} …`);
      try {
        const got = await r.measure(ctx);
        rows.push(...(Array.isArray(got) ? got : [got]));
      } catch (err) {
        log(`row ${r.id} failed: ${err instanceof Error ? err.message : String(err)}`);
        rows.push(
          notMeasured(r.id, r.id, r.target, `failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
    }
    if (ctx.oursRuns.length > 0) rows.push(sqsRow(ctx), workerRssRow(ctx));
  } finally {
    await emulator.stop();
  }
  const durationSec = (performance.now() - started) / 1000;
  const machine = machineInfo();
  const table = formatTable(rows);
  process.stdout.write(
    `\n${values.quick ? "Quick" : "Full"} benchmark, ${machine.summary}, ${durationSec.toFixed(0)} s\n\n${table}\n`,
  );
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(
    out,
    `${JSON.stringify({ mode: values.quick ? "quick" : "full", finishedAt: new Date().toISOString(), durationSec, machine, rows }, null, 2)}\n`,
  );
  process.stdout.write(`\nfigures: ${out}\n`);
  if (!values.keep) {
    log("removing the run's targets …");
    await fs.rm(scratchDir, { recursive: true, force: true });
  }
  return 0;
}

function unmountLazily(mountpoint: string): void {
  spawnSync("fusermount3", ["-u", "-z", "-q", mountpoint], { stdio: "ignore" });
}

function machineInfo() {
  const release = existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "";
  const osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(release)?.[1] ?? `${os.type()} ${os.release()}`;
  const cpus = os.cpus();
  const memGiB = Math.round(os.totalmem() / 2 ** 30);
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? "unknown",
    memGiB,
    os: osName,
    kernel: os.release(),
    node: process.version,
    summary: `${cpus.length} cores, ${memGiB} GiB, ${osName}, Node ${process.version}`,
  };
}

process.exitCode = await main();
