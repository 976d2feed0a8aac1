/**
 * The run's report as one self-contained HTML page (no script, no external file): the outcome at the top,
 * the throughput over time as an inline SVG chart, phase timings, the per-worker table, and every error and
 * skipped entry grouped by reason with its paths. The rendering is pure (a report in, a page out);
 * writeHtmlReport puts the page in its file.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { RunReport, TimelineSample } from "../master/report.ts";

const esc = (s: unknown): string =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
const num = (n: number) => n.toLocaleString("en-US");
const mb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

/** Paths shown per reason; the rest are counted. */
const PATHS_PER_REASON = 200;

/**
 * Where the page links the verification manifest: an s3:// object's console page, a file relative to the page's
 * own folder (`pageDir`) so that the two can be moved together.
 */
export function manifestHref(destination: string, pageDir?: string): string {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(destination);
  if (s3) {
    const [, bucket, key] = s3;
    return `https://s3.console.aws.amazon.com/s3/object/${encodeURIComponent(bucket ?? "")}?prefix=${encodeURIComponent(key ?? "")}`;
  }
  const target = pageDir ? path.relative(pageDir, path.resolve(destination)) : destination;
  return target.split(path.sep).map(encodeURIComponent).join("/");
}

export function renderHtmlReport(r: RunReport, pageDir?: string): string {
  const color = r.outcome === "succeeded" ? "#1a7f37" : r.outcome === "interrupted" ? "#9a6700" : "#cf222e";
  const title = `s3-bucket-loader run ${r.runId}: ${r.outcome}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  main { max-width: 1100px; margin: 0 auto; padding: 24px; }
  header.outcome { background: ${color}; color: #fff; border-radius: 8px; padding: 16px 20px; }
  header.outcome h1 { margin: 0; font-size: 24px; }
  header.outcome p { margin: 4px 0 0; opacity: .9; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin-top: 16px; }
  h2 { font-size: 16px; margin: 0 0 12px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
  .card { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; }
  .card b { display: block; font-size: 20px; }
  .card span { color: #59636e; font-size: 12px; }
  .bad b { color: #cf222e; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; }
  th { color: #59636e; font-weight: 600; }
  td.n, th.n { text-align: right; }
  details { margin: 6px 0; }
  summary { cursor: pointer; }
  code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
  ul.paths { margin: 4px 0 8px; padding-left: 20px; max-height: 320px; overflow: auto; }
  .muted { color: #59636e; }
  svg text { font: 11px system-ui, sans-serif; fill: #59636e; }
</style>
</head>
<body>
<main>
<header class="outcome" id="outcome">
  <h1>${esc(r.outcome.toUpperCase())}${r.failureReason ? `: ${esc(r.failureReason)}` : ""}</h1>
  <p>run <code>${esc(r.runId)}</code> · ${esc(r.source)} → ${esc(r.target)} · ${esc(r.startedAt)} to ${esc(r.endedAt)} (${num(r.durationSec)} s)</p>
  ${r.manifest ? `<p id="manifest">verification manifest: <a href="${esc(manifestHref(r.manifest.destination, pageDir))}">${esc(r.manifest.destination)}</a> (${num(r.manifest.lines)} lines, one per entry)</p>` : ""}
</header>
<section id="figures">
  <h2>Entries</h2>
  <div class="cards">
    ${card("entries", num(r.entries))}
    ${card("data written", mb(r.bytes))}
    ${card("written", num(r.write.ok))}
    ${card("unchanged", num(r.write.unchanged))}
    ${card("validated", num(r.validate.ok))}
    ${card("failed", num(r.write.failed + r.validate.failed), r.write.failed + r.validate.failed > 0)}
    ${card("skipped", num(r.write.skipped), r.write.skipped > 0)}
    ${card("not attempted", num(r.notAttempted), r.notAttempted > 0)}
    ${card("entries/s (WRITE)", num(r.rates.writeFilesPerSec))}
    ${card("MB/s (WRITE)", String(r.rates.writeMBPerSec))}
  </div>
</section>
<section id="throughput">
  <h2>Throughput over time</h2>
  ${throughputChart(r.timeline ?? [])}
</section>
<section id="phases">
  <h2>Phases</h2>
  ${phaseTable(r)}
</section>
<section id="workers">
  <h2>Workers (${r.workers.length})</h2>
  ${workerTable(r)}
</section>
<section id="errors">
  <h2>Errors (${num(r.errors.length)})</h2>
  ${grouped(r.errors, "no errors")}
</section>
<section id="skipped">
  <h2>Skipped (${num(r.skipped.length)})</h2>
  ${grouped(r.skipped, "nothing skipped")}
</section>
<section id="delivery">
  <h2>Delivery and notes</h2>
  <p>SQS requests ${num(r.delivery.sqsRequests)} (${r.delivery.sqsRequestsPerEntry} per entry) · redelivered batches ${num(r.delivery.redelivered)} · duplicates ${num(r.delivery.duplicates)} · dead-lettered ${num(r.delivery.deadLettered)} · protocol errors ${num(r.delivery.protocolErrors)} · master peak memory ${mb(r.master.peakRssBytes)}</p>
  ${r.notes.length ? `<ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : '<p class="muted">no notes</p>'}
</section>
</main>
</body>
</html>
`;
}

function card(label: string, value: string, bad = false): string {
  return `<div class="card${bad ? " bad" : ""}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
}

function phaseTable(r: RunReport): string {
  const rows = Object.entries(r.phases);
  if (rows.length === 0) return '<p class="muted">no phase was reached</p>';
  const total = Math.max(1, r.durationSec);
  const startMs = Date.parse(r.startedAt);
  return `<table><thead><tr><th>phase</th><th>start</th><th class="n">seconds</th><th style="width:45%">when</th></tr></thead><tbody>${rows
    .map(([name, p]) => {
      const from = ((Date.parse(p.start) - startMs) / 1000 / total) * 100;
      const width = Math.max(
        0.5,
        ((p.durationSec ?? total - (Date.parse(p.start) - startMs) / 1000) / total) * 100,
      );
      return `<tr><td>${esc(name)}</td><td>${esc(p.start.slice(11, 19))}</td><td class="n">${p.durationSec ?? "(unfinished)"}</td><td><svg width="100%" height="12" viewBox="0 0 100 12" preserveAspectRatio="none" role="img" aria-label="${esc(name)}"><rect x="${from.toFixed(2)}" y="2" width="${Math.min(100 - from, width).toFixed(2)}" height="8" fill="#0969da"/></svg></td></tr>`;
    })
    .join("")}</tbody></table>`;
}

function workerTable(r: RunReport): string {
  if (r.workers.length === 0) return '<p class="muted">no worker reported</p>';
  return `<table><thead><tr><th>worker</th><th>host</th><th>state</th><th class="n">written</th><th class="n">write failed</th><th class="n">unchanged</th><th class="n">validated</th><th class="n">validate failed</th><th class="n">peak memory</th><th>last seen</th></tr></thead><tbody>${r.workers
    .map(
      (w) =>
        `<tr><td><code>${esc(w.id)}</code></td><td>${esc(w.host)}</td><td>${esc(w.state)}${w.lostAt ? ` (lost ${esc(w.lostAt.slice(11, 19))})` : ""}${w.stopped?.reason === "spot interruption" ? ` (drained: Spot interruption ${esc(w.stopped.at.slice(11, 19))})` : ""}</td><td class="n">${num(w.write.ok)}</td><td class="n">${num(w.write.failed)}</td><td class="n">${num(w.write.unchanged ?? 0)}</td><td class="n">${num(w.validate.ok)}</td><td class="n">${num(w.validate.failed)}</td><td class="n">${mb(w.peakRssBytes)}</td><td>${esc(w.lastSeen.slice(11, 19))}</td></tr>`,
    )
    .join("")}</tbody></table>`;
}

/** Issues grouped by reason, the largest group first; each group lists its paths. */
function grouped(issues: RunReport["errors"], none: string): string {
  if (issues.length === 0) return `<p class="muted">${esc(none)}</p>`;
  const groups = new Map<string, { phase: string; paths: string[]; count: number }>();
  for (const i of issues) {
    const key = `${i.phase}\u0000${i.reason}`;
    const g = groups.get(key) ?? { phase: i.phase, paths: [], count: 0 };
    g.count++;
    if (g.paths.length < PATHS_PER_REASON) g.paths.push(i.path);
    groups.set(key, g);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1].count - a[1].count)
    .map(([key, g]) => {
      const reason = key.split("\u0000")[1] ?? "";
      const more =
        g.count > g.paths.length
          ? `<li class="muted">… and ${num(g.count - g.paths.length)} more (see the JSON report)</li>`
          : "";
      return `<details open class="reason"><summary><b>${num(g.count)}</b> × ${esc(reason)} <span class="muted">(${esc(g.phase)})</span></summary><ul class="paths">${g.paths.map((p) => `<li><code>${esc(p)}</code></li>`).join("")}${more}</ul></details>`;
    })
    .join("\n");
}

/** Entries/s and MB/s over the run as an SVG line chart, with the phases shaded. */
export function throughputChart(samples: readonly TimelineSample[]): string {
  if (samples.length < 2)
    return '<p class="muted">not enough progress samples for a chart (the run was too short)</p>';
  const W = 1000;
  const H = 260;
  const L = 56;
  const R = 56;
  const T = 12;
  const B = 30;
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const fMax = niceMax(Math.max(1, ...samples.map((s) => s.filesPerSec)));
  const mMax = niceMax(Math.max(0.1, ...samples.map((s) => s.mbPerSec)));
  const x = (t: number) => L + (t / tMax) * (W - L - R);
  const yF = (v: number) => T + (1 - v / fMax) * (H - T - B);
  const yM = (v: number) => T + (1 - v / mMax) * (H - T - B);
  const line = (f: (s: TimelineSample) => number) =>
    samples.map((s, i) => `${i ? "L" : "M"}${x(s.t).toFixed(1)},${f(s).toFixed(1)}`).join(" ");
  // Phase bands.
  const bands: string[] = [];
  let from = 0;
  for (let i = 1; i <= samples.length; i++) {
    const cur = samples[i];
    const prev = samples[i - 1] as TimelineSample;
    if (!cur || cur.phase !== prev.phase) {
      const x0 = x(samples[from]?.t ?? 0);
      const x1 = x(prev.t);
      const fill = prev.phase === "WRITE" ? "#ddf4ff" : prev.phase === "VALIDATE" ? "#dafbe1" : "#f6f8fa";
      bands.push(
        `<rect x="${x0.toFixed(1)}" y="${T}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${H - T - B}" fill="${fill}"/><text x="${(x0 + 4).toFixed(1)}" y="${T + 12}">${esc(prev.phase)}</text>`,
      );
      from = i;
    }
  }
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks
    .map(
      (k) =>
        `<line x1="${L}" x2="${W - R}" y1="${yF(fMax * k).toFixed(1)}" y2="${yF(fMax * k).toFixed(1)}" stroke="#eaeef2"/>` +
        `<text x="${L - 6}" y="${(yF(fMax * k) + 4).toFixed(1)}" text-anchor="end">${num(Math.round(fMax * k))}</text>` +
        `<text x="${W - R + 6}" y="${(yM(mMax * k) + 4).toFixed(1)}">${(mMax * k).toFixed(mMax < 10 ? 1 : 0)}</text>`,
    )
    .join("");
  const xTicks = ticks
    .map(
      (k) =>
        `<text x="${x(tMax * k).toFixed(1)}" y="${H - 10}" text-anchor="middle">${Math.round(tMax * k)} s</text>`,
    )
    .join("");
  return `<svg id="throughput-chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="entries per second and MB per second over the run">
${bands.join("")}${grid}${xTicks}
<path d="${line((s) => yF(s.filesPerSec))}" fill="none" stroke="#0969da" stroke-width="2"/>
<path d="${line((s) => yM(s.mbPerSec))}" fill="none" stroke="#bf3989" stroke-width="2" stroke-dasharray="6 3"/>
<text x="${L}" y="${H - B + 2}" dy="-${H - T - B + 4}" fill="#0969da">entries/s</text>
<text x="${W - R}" y="${T - 2}" text-anchor="end" fill="#bf3989">MB/s</text>
</svg>
<p class="muted"><span style="color:#0969da">━ entries/s</span> (left axis) · <span style="color:#bf3989">╍ MB/s</span> (right axis) · one sample per progress tick (${samples.length} samples)</p>`;
}

function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** Writes the page for `--report-html FILE`: whole or not at all (a temporary file renamed into place). */
export async function writeHtmlReport(file: string, report: RunReport): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, renderHtmlReport(report, path.dirname(path.resolve(file))));
  await fs.rename(tmp, file);
}
