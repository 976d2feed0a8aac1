/**
 * The rule that keeps every worker inside its source root: a TOC path is relative, uses `/`, and has no empty,
 * `.` or `..` segment and no NUL byte (`.` alone is the root). Anything else is refused before the file system
 * is touched.
 */
import path from "node:path";

export type PathCheck = { ok: true; segments: string[] } | { ok: false; reason: string };

export function checkTocPath(p: string): PathCheck {
  if (p === ".") return { ok: true, segments: [] }; // the root itself
  if (p.length === 0) return { ok: false, reason: "refused: empty path" };
  if (p.includes("\0")) return { ok: false, reason: "refused: path contains a NUL byte" };
  if (p.startsWith("/"))
    return { ok: false, reason: "refused: absolute path (TOC paths are relative to the source root)" };
  const segments = p.split("/");
  for (const s of segments) {
    if (s === "..")
      return { ok: false, reason: "refused: path contains '..' and would leave the source root" };
    if (s === "" || s === ".") return { ok: false, reason: "refused: path has an empty or '.' segment" };
  }
  return { ok: true, segments };
}

/** Joins a checked TOC path under a root; the result always stays below the root. */
export function resolveUnder(root: string, segments: readonly string[]): string {
  return path.join(root, ...segments);
}
