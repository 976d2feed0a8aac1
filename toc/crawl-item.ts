/**
 * What a crawl yields, whichever crawler made it: an entry, or an issue with its reason (special files, names
 * that are not UTF-8, directories that cannot be listed), never a silent gap. Shared by the walker and the
 * `find` crawler so that both say the same thing about the same tree.
 */
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import type { PathIssue, TocEntry } from "../core/messages.ts";

export type CrawlItem =
  | { readonly type: "entry"; readonly entry: import("../core/messages.ts").TocEntry }
  | {
      readonly type: "issue";
      readonly issue: PathIssue;
      readonly outcome: "failed" | "skipped";
      readonly isEntry: boolean;
    };

/**
 * Checks the source root and returns its entry (`.`, whose owner, mode and mtime go to the target root; in
 * S3, the prefix's marker) and its device, which the entries on it do not repeat.
 */
export async function rootItem(root: string): Promise<{ item: CrawlItem; dev: bigint }> {
  // stat, not lstat: a root that is a symlink stands for the directory it points to.
  const st = await fs.stat(root, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`source root ${root} cannot be read: ${err.code ?? err.message}`, { cause: err });
  });
  if (!st.isDirectory()) throw new Error(`source root ${root} is not a directory`);
  return {
    item: {
      type: "entry",
      entry: { path: ".", kind: "dir", size: 0, mtimeNs: st.mtimeNs.toString(), ino: `${st.ino}` },
    },
    dev: st.dev,
  };
}

/**
 * The identity of an entry as a worker checks it: its inode, and its device only when it is not the root's.
 * Inode and device as find prints them (`%i`, `%D`): decimal.
 */
export function identityOf(
  ino: bigint | string,
  dev: bigint | string,
  rootDev: bigint,
): Pick<TocEntry, "ino" | "dev"> {
  return BigInt(dev) === rootDev ? { ino: `${ino}` } : { ino: `${ino}`, dev: `${dev}` };
}

/** An entry from an lstat (walker and manifest alike). */
export function entryOf(rel: string, kind: TocEntry["kind"], st: BigIntStats, rootDev: bigint): TocEntry {
  return {
    path: rel,
    kind,
    size: kind === "dir" ? 0 : Number(st.size),
    mtimeNs: st.mtimeNs.toString(),
    ...identityOf(st.ino, st.dev, rootDev),
  };
}

export function cannotList(rel: string, code: string): CrawlItem {
  return {
    type: "issue",
    issue: { path: rel || ".", reason: `cannot list directory (${code}): its contents were not copied` },
    outcome: "failed",
    isEntry: false,
  };
}

/** A directory that is not the one listed in its parent any more (made a symlink, or replaced). */
export function changedDir(rel: string, what: string): CrawlItem {
  return {
    type: "issue",
    issue: { path: rel, reason: `changed during the crawl (${what}): its contents were not listed` },
    outcome: "failed",
    isEntry: false,
  };
}

export function cannotStat(rel: string, code: string): CrawlItem {
  return {
    type: "issue",
    issue: { path: rel, reason: `cannot stat (${code}) during the crawl` },
    outcome: "failed",
    isEntry: true,
  };
}

export function specialFile(rel: string, special: string): CrawlItem {
  return {
    type: "issue",
    issue: { path: rel, reason: `special file (${special}): not copied` },
    outcome: "skipped",
    isEntry: true,
  };
}

/** A name that is not UTF-8 (shown with its bad bytes as \xNN); a directory's contents go with it. */
export function notUtf8(shownPath: string): CrawlItem {
  return {
    type: "issue",
    issue: {
      path: shownPath,
      reason: "name is not valid UTF-8 and cannot become an S3 key; rename it to copy it",
    },
    outcome: "failed",
    isEntry: true,
  };
}

/** Shows a name that is not UTF-8 with its bad bytes as \xNN, so the report can name it. */
export function escapeBytes(raw: Uint8Array): string {
  let out = "";
  for (const b of raw)
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  return out;
}
