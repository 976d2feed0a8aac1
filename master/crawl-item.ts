/**
 * What a crawl yields, whichever crawler made it: an entry, or an issue with its reason (special files, names
 * that are not UTF-8, directories that cannot be listed), never a silent gap. Shared by the walker and the
 * `find` crawler so that both say the same thing about the same tree.
 */
import fs from "node:fs/promises";
import type { PathIssue } from "../core/messages.ts";

export type CrawlItem =
  | { readonly type: "entry"; readonly entry: import("../core/messages.ts").TocEntry }
  | {
      readonly type: "issue";
      readonly issue: PathIssue;
      readonly outcome: "failed" | "skipped";
      readonly isEntry: boolean;
    };

/**
 * Checks the source root and returns its entry (`.`): its owner, mode and mtime go to the target root (in S3,
 * the prefix's marker).
 */
export async function rootItem(root: string): Promise<CrawlItem> {
  // stat, not lstat: a root that is a symlink stands for the directory it points to.
  const st = await fs.stat(root, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`source root ${root} cannot be read: ${err.code ?? err.message}`, { cause: err });
  });
  if (!st.isDirectory()) throw new Error(`source root ${root} is not a directory`);
  return { type: "entry", entry: { path: ".", kind: "dir", size: 0, mtimeNs: st.mtimeNs.toString() } };
}

export function cannotList(rel: string, code: string): CrawlItem {
  return {
    type: "issue",
    issue: { path: rel || ".", reason: `cannot list directory (${code}): its contents were not copied` },
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

export function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}
