/**
 * A TOC from a manifest file (`--manifest FILE`): one path per line, relative to the source root (a leading
 * `/` is allowed, as in the original tool's manifests). Each listed path is looked up with `lstat` and becomes
 * an entry as the crawl would make it; its parent directories become entries too (once each), so that the
 * target gets their owners, modes and times. A listed directory is that directory only, not its contents.
 * A path that is missing, refused or a special file is an issue with its reason, never dropped silently.
 */
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { errnoText } from "../core/errors.ts";
import type { EntryKind } from "../core/messages.ts";
import { checkTocPath } from "../core/toc-path.ts";
import type { CrawlItem } from "./crawl.ts";
import { entryOf, rootItem } from "./crawl-item.ts";

/** Yields the root (as `.`), then the manifest's paths and their parents, in the manifest's order. */
export async function* manifestToc(
  root: string,
  file: string,
  signal?: AbortSignal,
): AsyncGenerator<CrawlItem> {
  const top = await rootItem(root);
  yield top.item;
  const seen = new Set<string>(["."]);
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  for await (const line of lines) {
    signal?.throwIfAborted();
    const rel = manifestPath(line);
    if (rel === null || seen.has(rel)) continue;
    const check = checkTocPath(rel);
    if (!check.ok) {
      yield {
        type: "issue",
        issue: { path: rel, reason: `manifest line ${check.reason}` },
        outcome: "failed",
        isEntry: true,
      };
      continue;
    }
    // Parents first, each once.
    for (let i = 1; i < check.segments.length; i++) {
      const parent = check.segments.slice(0, i).join("/");
      if (seen.has(parent)) continue;
      seen.add(parent);
      yield await itemOf(root, parent, top.dev);
    }
    seen.add(rel);
    yield await itemOf(root, rel, top.dev);
  }
}

/** The TOC path of a manifest line, or null for a blank line. */
export function manifestPath(line: string): string | null {
  const t = line.replace(/\r$/, "");
  if (t.trim() === "") return null;
  const rel = t.replace(/^\/+/, "").replace(/\/+$/, "");
  return rel === "" ? "." : rel;
}

async function itemOf(root: string, rel: string, rootDev: bigint): Promise<CrawlItem> {
  let st: import("node:fs").BigIntStats;
  try {
    st = await fs.lstat(path.join(root, rel), { bigint: true });
  } catch (err) {
    const code = errnoText(err);
    return {
      type: "issue",
      issue: { path: rel, reason: `listed in the manifest but cannot be read (${code})` },
      outcome: "failed",
      isEntry: true,
    };
  }
  const kind: EntryKind | null = st.isFile()
    ? "file"
    : st.isDirectory()
      ? "dir"
      : st.isSymbolicLink()
        ? "symlink"
        : null;
  if (kind === null)
    return {
      type: "issue",
      issue: { path: rel, reason: "special file: not copied" },
      outcome: "skipped",
      isEntry: true,
    };
  return { type: "entry", entry: entryOf(rel, kind, st, rootDev) };
}
