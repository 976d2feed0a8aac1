/**
 * The benchmark's source trees, made once under .bench/trees/ and reused by later runs (a tree is complete
 * when its marker `NAME.json` exists beside it). Deterministic: the same spec gives the same tree.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

export interface TreeSpec {
  readonly name: string;
  readonly files: number;
  readonly filesPerDir: number;
  /** Size of file i in bytes. */
  readonly sizeOf: (i: number) => number;
  readonly sizeLabel: string;
}

export interface Tree {
  readonly root: string;
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  /** Seconds it took to make, or 0 when it was reused. */
  readonly madeInSec: number;
  readonly spec: string;
}

/** Files of 1 B to 8 KiB (uniform, about 4 KiB on average), 40 to a directory, two levels deep. */
export function smallFiles(files: number): TreeSpec {
  return {
    name: `small-${files}`,
    files,
    filesPerDir: 40,
    sizeOf: (i) => 1 + ((i * 2_654_435_761) % 8192),
    sizeLabel: "1 B-8 KiB",
  };
}

export function fixedSize(files: number, bytes: number): TreeSpec {
  return {
    name: `fixed${bytes}-${files}`,
    files,
    filesPerDir: 40,
    sizeOf: () => bytes,
    sizeLabel: `${bytes} B`,
  };
}

/** Empty files, 1,000 to a directory: for the crawl and the big TOC, where content does not matter. */
export function emptyFiles(files: number): TreeSpec {
  return { name: `empty-${files}`, files, filesPerDir: 1000, sizeOf: () => 0, sizeLabel: "empty" };
}

export async function ensureTree(baseDir: string, spec: TreeSpec): Promise<Tree> {
  const root = path.join(baseDir, spec.name);
  const marker = `${root}.json`;
  const describe = `${spec.files} files (${spec.sizeLabel}), ${spec.filesPerDir} per directory`;
  if (existsSync(marker)) {
    const m = JSON.parse(await fs.readFile(marker, "utf8")) as Omit<Tree, "madeInSec" | "root" | "spec">;
    return { ...m, root, madeInSec: 0, spec: describe };
  }
  const started = performance.now();
  rmSync(root, { recursive: true, force: true });
  const made = makeTree(root, spec);
  const tree = { root, ...made, madeInSec: (performance.now() - started) / 1000, spec: describe };
  writeFileSync(marker, JSON.stringify({ files: made.files, dirs: made.dirs, bytes: made.bytes }));
  return tree;
}

// Synchronous calls: one file after another is fastest here, and nothing else runs meanwhile.
function makeTree(root: string, spec: TreeSpec): { files: number; dirs: number; bytes: number } {
  mkdirSync(root, { recursive: true });
  const fanout = 32;
  const leafDirs = Math.ceil(spec.files / spec.filesPerDir);
  const body = Buffer.alloc(64 * 1024, "0123456789abcdef");
  let bytes = 0;
  const made = new Set<string>();
  for (let i = 0; i < spec.files; i++) {
    const leaf = Math.floor(i / spec.filesPerDir);
    const top = path.join(root, `d${String(leaf % fanout).padStart(2, "0")}`);
    const dir = leafDirs <= fanout ? top : path.join(top, `sub${leaf}`);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
      made.add(top);
    }
    const size = spec.sizeOf(i);
    writeFileSync(path.join(dir, `f${i}.dat`), body.subarray(0, Math.min(size, body.length)));
    bytes += size;
  }
  const dirs = 1 + made.size;
  return { files: spec.files, dirs, bytes };
}
