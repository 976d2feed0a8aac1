/**
 * The TOC filters, as one stage over the crawl's stream: `--exclude` globs (an excluded directory takes its
 * contents with it), `--include` globs and `--modified-after` for files and symlinks. Directories always pass
 * (so that the tree keeps its shape and its directories' owners, modes and times), and so does the root.
 * Hidden files are ordinary names: `*` matches a leading dot. Pure but for the stream.
 */
import type { CrawlItem } from "./crawl.ts";

export interface TocFilter {
  /** Globs a file or symlink must match one of; empty: every one. */
  readonly include: readonly string[];
  /** Globs that leave an entry out (a directory with everything under it). */
  readonly exclude: readonly string[];
  /** Files and symlinks modified before this (epoch ms) are left out. */
  readonly modifiedAfterMs?: number | undefined;
}

/** What the filter left out, by why; filled as the stream is read. */
export interface FilterCounts {
  excluded: number;
  notIncluded: number;
  olderThan: number;
}

export const isNoFilter = (f: TocFilter): boolean =>
  f.include.length === 0 && f.exclude.length === 0 && f.modifiedAfterMs === undefined;

/** Passes on what the filter keeps; `counts` (when given) tells what it left out. */
export async function* filterToc(
  items: AsyncIterable<CrawlItem>,
  f: TocFilter,
  counts?: FilterCounts,
): AsyncGenerator<CrawlItem> {
  if (isNoFilter(f)) {
    yield* items;
    return;
  }
  const include = f.include.map(globMatcher);
  const exclude = f.exclude.map(globMatcher);
  const afterNs = f.modifiedAfterMs === undefined ? undefined : BigInt(f.modifiedAfterMs) * 1_000_000n;
  const excludedDirs = new Set<string>();
  const underExcluded = (p: string): boolean => {
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1))
      if (excludedDirs.has(p.slice(0, i))) return true;
    return false;
  };
  for await (const item of items) {
    const p = item.type === "entry" ? item.entry.path : item.issue.path;
    if (p === ".") {
      yield item;
      continue;
    }
    if (underExcluded(p) || exclude.some((m) => m(p))) {
      if (item.type === "entry" && item.entry.kind === "dir") excludedDirs.add(p);
      if (item.type === "entry" || item.isEntry) counts && counts.excluded++;
      continue;
    }
    if (item.type === "issue") {
      // A listing failure is about a directory, which always passes; an entry that could not be read passes
      // only if an include would have taken it.
      if (!item.isEntry || include.length === 0 || include.some((m) => m(p))) yield item;
      else if (counts) counts.notIncluded++;
      continue;
    }
    const e = item.entry;
    if (e.kind !== "dir") {
      if (include.length > 0 && !include.some((m) => m(p))) {
        if (counts) counts.notIncluded++;
        continue;
      }
      if (afterNs !== undefined && BigInt(e.mtimeNs) < afterNs) {
        if (counts) counts.olderThan++;
        continue;
      }
    }
    yield item;
  }
}

/**
 * A glob as a test of a relative path. With a `/` it is matched against the whole path; without, against the
 * last name, at any depth (`*.log`, `node_modules`). `*` and `?` stay within a name and match a leading dot;
 * `**` spans directories; `[abc]`, `[!a-z]` and `{a,b}` are as in a shell. A trailing `/` is ignored.
 */
export function globMatcher(glob: string): (path: string) => boolean {
  const g = glob.replace(/\/+$/, "").replace(/^\.\//, "").replace(/^\/+/, "");
  const re = new RegExp(`^${globToRegex(g)}$`, "u");
  if (g.includes("/")) return (p) => re.test(p);
  return (p) => re.test(p.slice(p.lastIndexOf("/") + 1));
}

function globToRegex(g: string): string {
  let out = "";
  let braces = 0;
  for (let i = 0; i < g.length; i++) {
    const c = g[i] as string;
    if (c === "*") {
      if (g[i + 1] === "*") {
        const slashAfter = g[i + 2] === "/";
        const atStart = i === 0 || g[i - 1] === "/";
        if (atStart && slashAfter) {
          out += "(?:.*/)?"; // `**/` : zero or more directories
          i += 2;
        } else {
          out += ".*";
          i += 1;
        }
      } else out += "[^/]*";
    } else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = g.indexOf("]", i + 2);
      if (end === -1) out += "\\[";
      else {
        let body = g.slice(i + 1, end);
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        out += `[${body.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (c === "{") {
      braces++;
      out += "(?:";
    } else if (c === "}" && braces > 0) {
      braces--;
      out += ")";
    } else if (c === "," && braces > 0) out += "|";
    else if (c === "\\" && i + 1 < g.length) {
      i++;
      out += escapeRe(g[i] as string);
    } else out += escapeRe(c);
  }
  return out + ")".repeat(braces);
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
