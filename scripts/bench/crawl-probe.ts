/**
 * Times the master's streaming crawl alone, in a process of its own: `node --import tsx crawl-probe.ts ROOT
 * [auto|find|walk]` prints `{"crawler":C,"entries":N,"issues":N,"ms":T}` (T from the first call to the last
 * entry; C is the crawler `auto` chose).
 */
import { autoCrawler, type Crawler, crawl } from "../../toc/crawl.ts";

const root = process.argv[2];
const wanted = (process.argv[3] ?? "auto") as Crawler;
if (!root) throw new Error("usage: crawl-probe.ts ROOT [auto|find|walk]");
const started = performance.now();
const crawler = wanted === "auto" ? autoCrawler(root) : wanted;
let entries = 0;
let issues = 0;
for await (const item of crawl(root, undefined, crawler)) {
  if (item.type === "entry") entries++;
  else issues++;
}
process.stdout.write(`${JSON.stringify({ crawler, entries, issues, ms: performance.now() - started })}\n`);
