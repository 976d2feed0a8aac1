import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { makeSampleTree } from "../../local/sample-tree.ts";
import type { RunReport } from "../../master/report.ts";
import { CLI, startCli, testEnv } from "../helpers/run.ts";

/** Debian's Chromium, which npm test installs when it is missing (playwright-core drives it). */
const CHROMIUM = "/usr/bin/chromium";

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    env: testEnv(),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("before and after a run: plan, dry run, config import, the HTML report", {
  timeout: 240_000,
}, () => {
  let tmp: string;
  let source: string;

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-plan-"));
    source = path.join(tmp, "src");
    await makeSampleTree(source, { files: 400, largeFiles: 1, seed: 11 });
    await fs.mkdir(path.join(source, "logs"));
    await fs.writeFile(path.join(source, "logs/app.log"), "log\n");
    await fs.writeFile(path.join(source, "x".repeat(200)), "long\n");
    const deep = path.join(source, ...Array.from({ length: 6 }, () => "d".repeat(200)));
    await fs.mkdir(deep, { recursive: true });
    await fs.writeFile(path.join(deep, "f"), "deep\n");
    spawnSync("mkfifo", [path.join(source, "a-fifo")]);
    await fs.writeFile(
      Buffer.concat([Buffer.from(`${source}/bad-`), Buffer.from([0xff]), Buffer.from("-name")]),
      "x",
    );
  });

  after(async () => {
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("plan warns when a directory needs more than one S3 prefix's PUT rate at the planned fleet size", async () => {
    const wide = path.join(tmp, "wide");
    await fs.mkdir(path.join(wide, "hot"), { recursive: true });
    await fs.mkdir(path.join(wide, "calm"));
    await fs.writeFile(path.join(wide, "calm", "one"), "1\n");
    for (let i = 0; i < 3_600; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, j) => fs.writeFile(path.join(wide, "hot", `f${i + j}`), "")),
      );
    }
    const plan = (workers: string) =>
      cli(["plan", "--source", wide, "--target", "s3://bucket/w", "--workers", workers, "--target-empty"]);
    const big = plan("20");
    assert.equal(big.code, 0, big.stderr);
    assert.match(
      big.stdout,
      /WARNING: 1 directory needs more than one S3 prefix's 3,500 PUT\/s at this fleet size \(6,000 PUT\/s\):\n {2}"hot": 3,600 entries of its own; at one prefix's rate 1\.0 s instead of 0\.6 s/,
    );
    assert.match(big.stdout, /the workers then pace it \(--prefix-pacing\)/);
    assert.doesNotMatch(big.stdout, /"calm"/);
    const small = plan("10");
    assert.equal(small.code, 0, small.stderr);
    assert.doesNotMatch(small.stdout, /WARNING/, "10 × 300 files/s stays under one prefix's rate");
  });

  it("plan prints the counts, a histogram, the census and the estimate with its prices", () => {
    const r = cli([
      "plan",
      "--source",
      source,
      "--target",
      "s3://bucket/imports",
      "--workers",
      "4",
      "--instance-type",
      "c7g.large",
    ]);
    assert.equal(r.code, 0, r.stderr);
    process.stdout.write(`\n---- plan output ----\n${r.stdout}---------------------\n`);
    assert.match(r.stdout, /entries [\d,]+: [\d,]+ files/);
    assert.match(r.stdout, /file sizes\n {2}empty/);
    assert.match(r.stdout, /special files \(FIFOs, sockets, devices\), skipped: 1\n {4}"a-fifo"/);
    assert.match(r.stdout, /names that are not UTF-8, failed: 1\n {4}"bad-\\\\xff-name"/);
    assert.match(r.stdout, /keys over 1,024 bytes, failed: 2/);
    assert.match(r.stdout, /4 × c7g\.large workers/);
    assert.match(r.stdout, /S3 PUT +\S+ +\([\d,]+ × \$0\.005 per 1,000\)/);
    assert.match(r.stdout, /EC2 .*× \$0\.0725 per hour/);
    assert.match(r.stdout, /AWS DataSync for the same .*\$0\.0125\/GB/);
    assert.match(r.stdout, /prices: us-east-1 list prices taken \d{4}-\d{2}-\d{2}/);

    const json = cli([
      "plan",
      "--source",
      source,
      "--sample",
      "50",
      "--total-entries",
      "5000",
      "--json",
      "--price-s3-put-per-1k",
      "0.01",
    ]);
    assert.equal(json.code, 0, json.stderr);
    const view = JSON.parse(json.stdout);
    assert.equal(view.complete, false);
    assert.equal(view.census.entries, 50);
    assert.equal(view.input.workload.entries, 5000);
    assert.equal(view.input.prices.s3PutPer1k, 0.01);

    const bad = cli(["plan", "--source", source, "--instance-type", "z9.huge"]);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--instance-type: got "z9.huge"; it is not in the price table .*give --price-instance-per-hour/,
    );
  });

  it("a dry run walks with the filters, writes the TOC and says what it would send, and copies nothing", async () => {
    const target = path.join(tmp, "dry-target");
    const stateDir = path.join(tmp, "state");
    const r = cli([
      "local",
      "--dry-run",
      "--source",
      source,
      "--target",
      target,
      "--state-dir",
      stateDir,
      "--run-id",
      "dry-1",
      "--exclude",
      "logs",
      "--exclude",
      "*.bin",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DRY RUN dry-1: nothing is copied, sent or created/);
    assert.match(r.stdout, /left out by the filters: [1-9][\d,]* excluded/);
    assert.match(r.stdout, /would send [\d,]+ entries in [\d,]+ TOC messages/);
    const toc = await fs.readFile(path.join(stateDir, "runs/dry-1/toc.jsonl"), "utf8");
    assert.ok(toc.length > 0);
    assert.ok(!toc.includes("app.log"), "an excluded directory's files are not in the TOC");
    await assert.rejects(fs.access(target), "the target was not created");
  });

  it("config import writes our YAML from the original's properties, and the programs take it with --config", async () => {
    const props = path.join(tmp, "s3BucketLoader.properties");
    await fs.writeFile(
      props,
      "master.workers.total=3\nworker.toc.consumer.threads.num=8\ntocPayloadHandler.write.use.rsync=false\n" +
        `tocGenerator.source.dir=${source}\ntocPayloadHandler.write.retries=3\n`,
    );
    const out = path.join(tmp, "load.yaml");
    const r = cli(["config", "import", props, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const yaml = await fs.readFile(out, "utf8");
    assert.match(yaml, /^workers: 3$/m);
    assert.match(yaml, /^# tocPayloadHandler\.write\.retries: retries are/m);
    assert.equal(
      cli(["config", "import", props, "--out", out]).code,
      2,
      "does not overwrite without --force",
    );
    // The imported file drives a dry run: its source and workers.
    const dry = cli(["local", "--dry-run", "--config", out, "--state-dir", path.join(tmp, "state2")]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /estimate for 3 × c6i\.large/);
    await fs.writeFile(path.join(tmp, "typo.yaml"), "wokers: 3\n");
    const typo = cli(["local", "--dry-run", "--config", path.join(tmp, "typo.yaml")]);
    assert.equal(typo.code, 2);
    assert.match(
      typo.stderr,
      /wokers in .*typo\.yaml: got 3; no program has this setting \(did you mean workers\?\)/,
    );
  });

  it("writes the report as an HTML page that a browser shows: outcome, chart, workers, phases, errors by reason", async () => {
    const target = path.join(tmp, "dst");
    const html = path.join(tmp, "report.html");
    const json = path.join(tmp, "report.json");
    const run = startCli([
      "local",
      "--source",
      source,
      "--target",
      target,
      "--workers",
      "2",
      "--progress-ms",
      "150",
      "--state-dir",
      path.join(tmp, "state3"),
      "--report",
      json,
      "--report-html",
      html,
    ]);
    const exit = await run.exited;
    assert.equal(
      exit.code,
      1,
      `the run has failed entries (a bad name, long keys are fine here); ${run.stderr().slice(-2000)}`,
    );
    const report = JSON.parse(await fs.readFile(json, "utf8")) as RunReport;
    assert.ok((report.timeline?.length ?? 0) >= 2, "the report has a timeline");
    assert.ok(run.lines.some((l) => l.event === "progress"));

    const shots = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-report-screenshot-"));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(`file://${html}`);
      assert.match(await page.title(), /run .*: failed/);
      // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node: the rendered text is what a reader sees
      assert.match(await page.locator("#outcome h1").innerText(), /^FAILED/);
      assert.equal(await page.locator("#throughput-chart path").count(), 2);
      assert.equal(await page.locator("#workers tbody tr").count(), 2);
      assert.ok((await page.locator("#phases tbody tr").count()) >= 3);
      // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node: the rendered text is what a reader sees
      const errors = await page.locator("#errors").innerText();
      assert.match(errors, /not valid UTF-8/);
      assert.match(errors, /bad-\\xff-name/);
      // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node: the rendered text is what a reader sees
      assert.match(await page.locator("#skipped").innerText(), /special file \(fifo\)[\s\S]*a-fifo/);
      const file = path.join(shots, "report.png");
      await page.screenshot({ path: file, fullPage: true });
      process.stdout.write(`report screenshot: ${file}\n`);
    } finally {
      await browser.close();
    }
  });
});
