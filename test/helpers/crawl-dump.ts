/**
 * `node --import tsx test/helpers/crawl-dump.ts ROOT CRAWLER`: every item one crawler yields for ROOT, one JSON
 * line each, in the crawler's order. Lets a test crawl as another user (file modes bite only then).
 */
import { type Crawler, crawl } from "../../toc/crawl.ts";

const [root, crawler] = process.argv.slice(2) as [string, Crawler];
const out: string[] = [];
for await (const item of crawl(root, undefined, crawler)) out.push(JSON.stringify(item));
process.stdout.write(out.map((l) => `${l}\n`).join(""));
