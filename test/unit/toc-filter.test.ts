import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import type { TocEntry } from "../../core/messages.ts";
import type { CrawlItem } from "../../toc/crawl.ts";
import { manifestPath, manifestToc } from "../../toc/manifest.ts";
import { type FilterCounts, filterToc, globMatcher } from "../../toc/toc-filter.ts";
import { tocSource } from "../../toc/toc-source.ts";

const entry = (p: string, kind: TocEntry["kind"] = "file", mtimeMs = 1_700_000_000_000): CrawlItem => ({
  type: "entry",
  entry: { path: p, kind, size: 1, mtimeNs: (BigInt(mtimeMs) * 1_000_000n).toString() },
});
async function paths(items: AsyncIterable<CrawlItem>): Promise<string[]> {
  const out: string[] = [];
  for await (const i of items) out.push(i.type === "entry" ? i.entry.path : `!${i.issue.path}`);
  return out;
}
async function* from(items: CrawlItem[]): AsyncGenerator<CrawlItem> {
  yield* items;
}

describe("TOC filters", () => {
  it("match globs as a shell does, a name without / at any depth", () => {
    const table: [string, string, boolean][] = [
      ["*.log", "a.log", true],
      ["*.log", "deep/dir/b.log", true],
      ["*.log", "a.log.gz", false],
      ["*", ".hidden", true],
      ["logs/*.txt", "logs/a.txt", true],
      ["logs/*.txt", "logs/sub/a.txt", false],
      ["logs/**/*.txt", "logs/sub/deeper/a.txt", true],
      ["logs/**/*.txt", "logs/a.txt", true],
      ["**/cache", "x/y/cache", true],
      ["node_modules", "app/node_modules", true],
      ["file?.bin", "file1.bin", true],
      ["file?.bin", "file10.bin", false],
      ["[ab]*.csv", "b-2024.csv", true],
      ["[!ab]*.csv", "b-2024.csv", false],
      ["*.{jpg,png}", "photo.png", true],
      ["*.{jpg,png}", "photo.gif", false],
      ["data/", "data", true],
      ["a+b (1).txt", "a+b (1).txt", true],
    ];
    for (const [glob, p, expected] of table) assert.equal(globMatcher(glob)(p), expected, `${glob} ~ ${p}`);
  });

  it("leave out an excluded directory with everything under it, and count what they left out", async () => {
    const counts: FilterCounts = { excluded: 0, notIncluded: 0, olderThan: 0 };
    const out = await paths(
      filterToc(
        from([
          entry(".", "dir"),
          entry("keep", "dir"),
          entry("keep/a.txt"),
          entry("keep/.hidden.txt"),
          entry("keep/b.log"),
          entry("cache", "dir"),
          entry("cache/x.txt"),
          entry("cache/sub", "dir"),
          entry("cache/sub/y.txt"),
          {
            type: "issue",
            issue: { path: "cache/fifo", reason: "special file (fifo): not copied" },
            outcome: "skipped",
            isEntry: true,
          },
        ]),
        { include: ["*.txt"], exclude: ["cache"] },
        counts,
      ),
    );
    assert.deepEqual(out, [".", "keep", "keep/a.txt", "keep/.hidden.txt"]);
    assert.deepEqual(counts, { excluded: 5, notIncluded: 1, olderThan: 0 });
  });

  it("keep files modified at or after --modified-after, and every directory", async () => {
    const t = Date.parse("2024-03-01T00:00:00Z");
    const out = await paths(
      filterToc(
        from([
          entry(".", "dir"),
          entry("old", "dir", t - 1),
          entry("old/a", "file", t - 1),
          entry("old/b", "file", t),
          entry("l", "symlink", t + 5),
        ]),
        { include: [], exclude: [], modifiedAfterMs: t },
      ),
    );
    assert.deepEqual(out, [".", "old", "old/b", "l"]);
  });

  it("read a manifest: paths relative to the source, parents first, missing ones reported", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-manifest-"));
    try {
      await fs.mkdir(path.join(root, "a/b"), { recursive: true });
      await fs.writeFile(path.join(root, "a/b/one.txt"), "1");
      await fs.writeFile(path.join(root, "two.txt"), "22");
      await fs.writeFile(path.join(root, "a/skip.log"), "x");
      const manifest = path.join(root, "..", `${path.basename(root)}.manifest`);
      await fs.writeFile(manifest, "/a/b/one.txt\r\n\ntwo.txt\nmissing.txt\n../escape\na/skip.log\n");
      const out = await paths(manifestToc(root, manifest));
      assert.deepEqual(out, [
        ".",
        "a",
        "a/b",
        "a/b/one.txt",
        "two.txt",
        "!missing.txt",
        "!../escape",
        "a/skip.log",
      ]);
      // The filters apply to a manifest too.
      const filtered = await paths(tocSource(root, { manifest, include: [], exclude: ["*.log"] }));
      assert.ok(!filtered.includes("a/skip.log"));
      await fs.rm(manifest);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
    assert.equal(manifestPath("/x/y/"), "x/y");
    assert.equal(manifestPath("   "), null);
  });
});
