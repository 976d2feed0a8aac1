/**
 * The TOC of a directory source, as a stream: the root (`.`) and every entry under it, or an issue with its
 * reason, never a silent gap. Two crawlers say the same thing about the same tree:
 * - `find` (GNU find, parsed as it streams): the fastest on a local disk, one round trip at a time;
 * - `walk` (Node, many lstat calls in flight): the fastest where every call is a network round trip.
 * `auto` takes the walker on network and FUSE filesystems (NFS, EFS, SMB, a yas3fs mount…) and find elsewhere,
 * when GNU find is there.
 */
import { isRemoteFs } from "../core/filesystems.ts";
import type { TocEntry } from "../core/messages.ts";
import type { ObjectStore } from "../core/object-store.ts";
import { findCrawl, hasGnuFind } from "./crawl-find.ts";
import type { CrawlItem } from "./crawl-item.ts";
import { walk } from "./crawl-walk.ts";

export type { CrawlItem } from "./crawl-item.ts";

export type Crawler = "auto" | "find" | "walk";

export async function* crawl(
  root: string,
  signal?: AbortSignal,
  crawler: Crawler = "auto",
): AsyncGenerator<CrawlItem> {
  const chosen = crawler === "auto" ? await autoCrawler(root) : crawler;
  yield* chosen === "find" ? findCrawl(root, signal) : walk(root, signal);
}

/** `find` on a local filesystem when GNU find is there, the walker otherwise. */
export function autoCrawler(root: string): "find" | "walk" {
  // A root that cannot be looked at counts as remote: the walker then says why it cannot be read.
  return !isRemoteFs(root) && hasGnuFind() ? "find" : "walk";
}

/**
 * The TOC of a bucket mirror: every object under the prefix, in listing order. Keys ending in `/` are
 * directory markers (the prefix's own marker is the root `.`); everything else is copied as it is. A key the
 * workers would not read and write as itself (`PREFIX/.` names the prefix's marker in yas3fs's layout) is
 * reported by name, never copied as another object nor passed over.
 */
export async function* listBucket(
  store: ObjectStore,
  prefix: string,
  signal?: AbortSignal,
): AsyncGenerator<CrawlItem> {
  const base = prefix ? `${prefix}/` : "";
  for await (const o of store.list(base, signal)) {
    const rel = o.key.slice(base.length);
    const mtimeNs = (BigInt(o.lastModifiedMs) * 1_000_000n).toString();
    let entry: TocEntry;
    if (rel === "" || (base === "" && rel === ".")) entry = { path: ".", kind: "dir", size: 0, mtimeNs };
    else if (rel.endsWith("/")) entry = { path: rel.slice(0, -1), kind: "dir", size: 0, mtimeNs };
    else entry = { path: rel, kind: "file", size: o.size, mtimeNs };
    const back = mirrorKeyOf(prefix, entry);
    if (back === o.key) {
      yield { type: "entry", entry };
      continue;
    }
    yield {
      type: "issue",
      issue: {
        path: rel,
        reason:
          `object key ${JSON.stringify(o.key)} cannot be copied as itself: its name would be read and written ` +
          `as ${JSON.stringify(back)}, ${entry.path === "." ? "the prefix's own directory marker" : "another key"}; ` +
          "copy or rename it by hand",
      },
      outcome: "failed",
      isEntry: true,
    };
  }
}

/**
 * The key a worker reads and writes for an entry under a prefix: the layout of yas3fs's keys (directories
 * with a slash, the root as the prefix's marker, or `.` without a prefix), as the mirror target uses it.
 */
export function mirrorKeyOf(prefix: string, e: Pick<TocEntry, "path" | "kind">): string {
  if (e.path === ".") return prefix ? `${prefix}/` : ".";
  const key = prefix ? `${prefix}/${e.path}` : e.path;
  return e.kind === "dir" ? `${key}/` : key;
}
