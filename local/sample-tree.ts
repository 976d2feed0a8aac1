/**
 * A sample source tree for local runs and tests: many small files and a few large ones, nested and empty
 * directories, hidden entries, names with spaces and non-ASCII characters, relative and dangling symlinks,
 * and varied modes and mtimes. Deterministic for a given seed.
 */
import fs from "node:fs/promises";
import path from "node:path";

export interface SampleTreeOptions {
  readonly files: number;
  readonly seed?: number;
  /** Files of 1 MiB or more among them. */
  readonly largeFiles?: number;
}

export interface SampleTreeSummary {
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly bytes: number;
}

const NAMES = [
  "alpha",
  "beta",
  "gamma",
  "delta",
  "with space",
  "café",
  "日本語",
  "emoji-🚀",
  ".hidden",
  "-dash",
];

export async function makeSampleTree(root: string, o: SampleTreeOptions): Promise<SampleTreeSummary> {
  let seed = o.seed ?? 42;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  await fs.mkdir(root, { recursive: true });
  const dirs: string[] = [""];
  let bytes = 0;
  let symlinks = 0;
  // Directories: up to 4 levels, about 40 files per directory.
  const wantDirs = Math.max(1, Math.ceil(o.files / 40));
  for (let i = 1; dirs.length < wantDirs; i++) {
    const parent = dirs[Math.floor(rand() * dirs.length)] ?? "";
    if (parent.split("/").length > 4) continue;
    const name = `${NAMES[i % NAMES.length]}-${i}`;
    const rel = parent ? `${parent}/${name}` : name;
    await fs.mkdir(path.join(root, rel));
    dirs.push(rel);
  }
  await fs.mkdir(path.join(root, "empty dir"));
  const large = o.largeFiles ?? Math.min(3, Math.floor(o.files / 1000));
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < o.files; i++) {
    const dir = dirs[i % dirs.length] ?? "";
    const name =
      i % 97 === 0 ? `.dot file ${i}` : `${NAMES[i % NAMES.length]} ${i}.${["txt", "bin", "json"][i % 3]}`;
    const rel = dir ? `${dir}/${name}` : name;
    const size =
      i < large
        ? 1_048_576 + Math.floor(rand() * 1_048_576)
        : i % 50 === 0
          ? 0
          : Math.floor(rand() * rand() * 16_384);
    const body = Buffer.allocUnsafe(size);
    for (let off = 0; off < size; off += chunk.length) {
      chunk.fill((i * 31 + off) & 0xff);
      chunk.copy(body, off, 0, Math.min(chunk.length, size - off));
    }
    body.write(`file ${i}\n`.slice(0, size));
    const file = path.join(root, rel);
    await fs.writeFile(file, body);
    await fs.chmod(file, [0o644, 0o600, 0o640, 0o755][i % 4] ?? 0o644);
    const t = 1_500_000_000 + Math.floor(rand() * 200_000_000) + (i % 1000) / 1000;
    await fs.utimes(file, t, t);
    bytes += size;
  }
  for (const [i, dir] of dirs.slice(1, 6).entries()) {
    await fs.symlink(i === 4 ? "does-not-exist" : "..", path.join(root, dir, `link ${i}`));
    symlinks++;
  }
  for (const [i, dir] of dirs.slice(1).entries()) {
    await fs.chmod(path.join(root, dir), [0o755, 0o750, 0o775][i % 3] ?? 0o755);
    const t = 1_400_000_000 + i * 1000;
    await fs.utimes(path.join(root, dir), t, t);
  }
  return { files: o.files, dirs: dirs.length, symlinks, bytes };
}
