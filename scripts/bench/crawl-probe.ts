/**
 * Times the master's streaming crawl alone, in a process of its own: `node --import tsx crawl-probe.ts ROOT`
 * prints `{"entries":N,"issues":N,"ms":T}` (T from the first call to the last entry).
 */
import { crawl } from "../../master/crawl.ts";

const root = process.argv[2];
if (!root) throw new Error("usage: crawl-probe.ts ROOT");
const started = performance.now();
let entries = 0;
let issues = 0;
for await (const item of crawl(root)) {
  if (item.type === "entry") entries++;
  else issues++;
}
process.stdout.write(`${JSON.stringify({ entries, issues, ms: performance.now() - started })}\n`);
