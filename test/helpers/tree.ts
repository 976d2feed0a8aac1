/** Compares two trees entry by entry: kind, content, size, mode, owner, mtime, link target. */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

export interface TreeOptions {
  /** Compare uid/gid (only meaningful when the copy ran as root). */
  readonly owner: boolean;
  /** Relative paths not compared (reported problems): they may be missing from the target, or there. */
  readonly except?: ReadonlySet<string>;
}

export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) await walk(r);
    }
  };
  await walk("");
  return out.sort();
}

/** Returns one line per difference; empty when the target mirrors the source. */
export async function diffTrees(src: string, dst: string, o: TreeOptions): Promise<string[]> {
  const problems: string[] = [];
  const a = (await listTree(src)).filter((p) => !o.except?.has(p));
  const b = new Set((await listTree(dst)).filter((p) => !o.except?.has(p)));
  for (const rel of a) {
    if (!b.has(rel)) {
      problems.push(`${rel}: missing in target`);
      continue;
    }
    b.delete(rel);
    const [s, d] = await Promise.all([
      fs.lstat(path.join(src, rel), { bigint: true }),
      fs.lstat(path.join(dst, rel), { bigint: true }),
    ]);
    const kind = (x: typeof s) =>
      x.isFile() ? "file" : x.isDirectory() ? "dir" : x.isSymbolicLink() ? "symlink" : "other";
    if (kind(s) !== kind(d)) {
      problems.push(`${rel}: ${kind(s)} became ${kind(d)}`);
      continue;
    }
    if (s.isFile()) {
      if (s.size !== d.size) problems.push(`${rel}: size ${s.size} → ${d.size}`);
      else if ((await hash(path.join(src, rel))) !== (await hash(path.join(dst, rel))))
        problems.push(`${rel}: content differs`);
    }
    if (s.isSymbolicLink()) {
      const [ls, ld] = await Promise.all([
        fs.readlink(path.join(src, rel)),
        fs.readlink(path.join(dst, rel)),
      ]);
      if (ls !== ld) problems.push(`${rel}: link ${ls} → ${ld}`);
    } else if ((s.mode & 0o7777n) !== (d.mode & 0o7777n)) {
      problems.push(`${rel}: mode ${s.mode.toString(8)} → ${d.mode.toString(8)}`);
    }
    if (o.owner && (s.uid !== d.uid || s.gid !== d.gid))
      problems.push(`${rel}: owner ${s.uid}:${s.gid} → ${d.uid}:${d.gid}`);
    const dt = s.mtimeNs > d.mtimeNs ? s.mtimeNs - d.mtimeNs : d.mtimeNs - s.mtimeNs;
    if (dt >= 1000n) problems.push(`${rel}: mtime ${s.mtimeNs} → ${d.mtimeNs}`);
  }
  for (const extra of b) problems.push(`${extra}: only in target`);
  return problems;
}

async function hash(file: string): Promise<string> {
  return createHash("sha256")
    .update(await fs.readFile(file))
    .digest("hex");
}
