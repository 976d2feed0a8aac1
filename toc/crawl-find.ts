/**
 * The `find` crawler: GNU find walks the tree in C and prints one record per entry (`%y %s %T@ %D %i %p` and a
 * NUL: type, size, mtime, device, inode, path), which is parsed here as it streams. GNU find (fts) opens each
 * directory without following a symlink and checks it is the one it stat-ed, so a directory swapped for a
 * symlink during the crawl is not walked into. On a local disk this is several times faster than any walk in Node; on a
 * network filesystem find waits for one round trip at a time, so the walker does better there (see `crawl.ts`).
 * Its complaints on stderr (a directory it cannot list, an entry gone before its lstat) are looked at again
 * here and become the same issues the walker reports.
 */
import { isUtf8 } from "node:buffer";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import { errnoText } from "../core/errors.ts";
import type { EntryKind } from "../core/messages.ts";
import {
  type CrawlItem,
  cannotList,
  cannotStat,
  escapeBytes,
  identityOf,
  notUtf8,
  rootItem,
  specialFile,
} from "./crawl-item.ts";

const FORMAT = "%y %s %T@ %D %i %p\\0";

let gnuFind: boolean | undefined;

/** Whether `find` is GNU find (it alone has `-printf`). */
export function hasGnuFind(): boolean {
  gnuFind ??= /GNU findutils/.test(spawnSync("find", ["--version"], { encoding: "utf8" }).stdout ?? "");
  return gnuFind;
}

/** find processes at once over separate subtrees: find is bound by its own CPU, and hosts have more cores. */
const PARALLEL = Math.max(2, Math.min(4, availableParallelism()));

/**
 * Yields the root (as `.`) and every entry under it. The root's children come first (one shallow find, one
 * level more when there are few directories), then the subtrees below, dealt among up to PARALLEL finds at
 * once; within a subtree, find's order (a directory before its contents).
 */
export async function* findCrawl(root: string, signal?: AbortSignal): AsyncGenerator<CrawlItem> {
  const top = await rootItem(root);
  yield top.item;
  if (!hasGnuFind()) {
    throw new Error("--crawler find needs GNU find (findutils): install it, or use --crawler walk");
  }
  const absRoot = path.resolve(root);
  // The top levels, shallow: their directories become the subtrees walked in parallel.
  let level: string[] = [""];
  for (let depth = 1; depth <= 2 && level.length > 0; depth++) {
    const next: string[] = [];
    for await (const items of findJob(absRoot, top.dev, level, true, signal)) {
      for (const item of items) {
        if (item.type === "entry" && item.entry.kind === "dir") next.push(item.entry.path);
        yield item;
      }
    }
    level = next;
    if (level.length >= 2 * PARALLEL) break;
  }
  // The subtrees, dealt round robin among PARALLEL finds (each takes many start directories; at most 1,000
  // per process, far from the argument limit).
  const groups: string[][] = [];
  for (let i = 0; i < level.length; i += PARALLEL * 1000) {
    const slice = level.slice(i, i + PARALLEL * 1000);
    for (let g = 0; g < PARALLEL; g++) {
      const group = slice.filter((_, j) => j % PARALLEL === g);
      if (group.length > 0) groups.push(group);
    }
  }
  for await (const items of merged(
    groups.map((dirs) => () => findJob(absRoot, top.dev, dirs, false, signal)),
    PARALLEL,
  )) {
    for (const item of items) yield item;
  }
}

/** Runs the jobs, at most `k` at once, and yields their chunks as they come. */
async function* merged<T>(jobs: (() => AsyncGenerator<T>)[], k: number): AsyncGenerator<T> {
  const running = new Map<AsyncGenerator<T>, Promise<{ it: AsyncGenerator<T>; r: IteratorResult<T> }>>();
  let nextJob = 0;
  const pull = (it: AsyncGenerator<T>) =>
    running.set(
      it,
      it.next().then((r) => ({ it, r })),
    );
  const start = () => {
    while (running.size < k && nextJob < jobs.length) pull((jobs[nextJob++] as () => AsyncGenerator<T>)());
  };
  try {
    start();
    while (running.size > 0) {
      const { it, r } = await Promise.race(running.values());
      if (r.done) {
        running.delete(it);
        start();
        continue;
      }
      pull(it);
      yield r.value;
    }
  } finally {
    await Promise.allSettled([...running.keys()].map((it) => it.return(undefined)));
  }
}

/**
 * One find over the directories `rels` (the root for ""): their children only (`shallow`), or everything
 * below them. Yields the items of each chunk of output; find's complaints become issues.
 */
async function* findJob(
  absRoot: string,
  rootDev: bigint,
  rels: readonly string[],
  shallow: boolean,
  signal?: AbortSignal,
): AsyncGenerator<CrawlItem[]> {
  if (rels.length === 0) return; // find with no start directory would walk the current one
  const dirs = rels.map((rel) => (rel === "" ? absRoot : path.join(absRoot, rel)));
  // -H: the root may be a symlink to the tree (as the walker allows); nothing below it is followed.
  const args = ["-H", ...dirs, "-mindepth", "1", ...(shallow ? ["-maxdepth", "1"] : []), "-printf", FORMAT];
  const child = spawn("find", args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C" },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("close", (code, sig) => resolve({ code, signal: sig }));
    },
  );
  const onAbort = () => child.kill("SIGTERM");
  signal?.addEventListener("abort", onAbort, { once: true });
  const complaints: string[] = [];
  let errText = "";
  child.stderr.setEncoding("latin1");
  child.stderr.on("data", (d: string) => {
    errText += d;
    const lines = errText.split("\n");
    errText = lines.pop() ?? "";
    complaints.push(...lines.filter((l) => l !== ""));
  });
  const parser = new RecordParser(`${absRoot}/`, rootDev);
  let complained = 0;
  const heard = async () => {
    const items: CrawlItem[] = [];
    while (complaints.length > 0) {
      complained++;
      items.push(await complaintItem(complaints.shift() as string, absRoot));
    }
    return items;
  };
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      yield parser.push(chunk);
      if (complaints.length > 0) yield await heard();
    }
    const end = await exited;
    signal?.throwIfAborted();
    if (end.error) throw new Error(`find could not be started: ${end.error.message}`, { cause: end.error });
    if (errText !== "") complaints.push(errText);
    yield await heard();
    parser.finish();
    if (end.code === 1 && complained === 0) {
      yield [
        {
          type: "issue",
          issue: {
            path: rels.length === 1 ? rels[0] || "." : ".",
            reason: "find failed without saying why: the TOC may be incomplete; re-run the crawl",
          },
          outcome: "failed",
          isEntry: false,
        },
      ];
    } else if (end.code !== 0 && end.code !== 1) {
      throw new Error(`find exited with ${end.code ?? end.signal}: the crawl is incomplete`);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
}

/** Splits find's output into records and parses them; a record may straddle chunks. */
export class RecordParser {
  private rest: Buffer | null = null;
  private readonly strip: Buffer;

  /**
   * `root`: what every path find prints starts with (the root and a slash), taken off to make TOC paths;
   * `rootDev`: the root's device, which entries on it do not repeat.
   */
  constructor(
    root: string,
    private readonly rootDev: bigint,
  ) {
    this.strip = Buffer.from(root, "utf8");
  }

  /** Directories whose names are not UTF-8: their contents are covered by the directory's own issue. */
  private readonly badDirs: Buffer[] = [];

  /** The items of the whole records in `chunk` (and what was left over from the last one). */
  push(chunk: Buffer): CrawlItem[] {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const items: CrawlItem[] = [];
    let start = 0;
    for (let z = buf.indexOf(0, start); z >= 0; z = buf.indexOf(0, start)) {
      const item = this.record(buf, start, z);
      start = z + 1;
      if (item) items.push(item);
    }
    this.rest = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
    return items;
  }

  finish(): void {
    if (this.rest) throw new Error("find's output ended inside a record: the crawl is incomplete");
  }

  private record(buf: Buffer, start: number, end: number): CrawlItem | null {
    const type = buf[start] as number;
    let i = start + 2;
    let size = 0;
    for (let c = buf[i]; c !== 0x20; c = buf[++i]) {
      if (c === undefined || c < 0x30 || c > 0x39)
        throw new Error(`find printed a record this crawler cannot read`);
      size = size * 10 + (c - 0x30);
    }
    const t0 = ++i;
    while (buf[i] !== 0x20 && i < end) i++;
    const mtimeNs = nsOf(buf.toString("latin1", t0, i));
    const dev = this.digits(buf, ++i, end);
    i += dev.length;
    const ino = this.digits(buf, ++i, end);
    i += ino.length;
    const p0 = i + 1 + this.strip.length;
    // find prints each path under the start directory it was given, all under the root: a cheap look at the
    // slash that ends the root's part (and at the root's first byte) catches a record this crawler misread.
    if (p0 > end || buf[p0 - 1] !== 0x2f || buf[i + 1] !== this.strip[0]) {
      throw new Error("find printed a path outside the root: the crawl cannot go on");
    }
    const rel = buf.toString("utf8", p0, end);
    // Bytes that are not UTF-8 decode to U+FFFD; only then is the name looked at byte by byte.
    if (rel.includes("\uFFFD")) {
      const raw = buf.subarray(p0, end);
      if (!isUtf8(raw)) return this.notUtf8(raw, type === 0x64);
    }
    const kind = KINDS[type];
    if (typeof kind !== "string") return specialFile(rel, kind?.special ?? "unknown type");
    return {
      type: "entry",
      entry: {
        path: rel,
        kind,
        size: kind === "dir" ? 0 : size,
        mtimeNs,
        ...identityOf(ino, dev, this.rootDev),
      },
    };
  }

  /** The decimal digits at `start` up to the next space. */
  private digits(buf: Buffer, start: number, end: number): string {
    let i = start;
    while (i < end && buf[i] !== 0x20) {
      const c = buf[i] as number;
      if (c < 0x30 || c > 0x39) throw new Error("find printed a record this crawler cannot read");
      i++;
    }
    if (i === start || i >= end) throw new Error("find printed a record this crawler cannot read");
    return buf.toString("latin1", start, i);
  }

  private notUtf8(raw: Buffer, isDir: boolean): CrawlItem | null {
    for (const d of this.badDirs)
      if (raw.length > d.length && raw.subarray(0, d.length).equals(d)) return null;
    if (isDir) this.badDirs.push(Buffer.concat([raw, Buffer.from("/")]));
    const slash = raw.lastIndexOf(0x2f);
    const parent = slash < 0 ? "" : `${raw.subarray(0, slash).toString("utf8")}/`;
    return notUtf8(`${parent}${escapeBytes(raw.subarray(slash + 1))}`);
  }
}

const KINDS: Record<number, EntryKind | { special: string }> = {
  102: "file", // f
  100: "dir", // d
  108: "symlink", // l
  112: { special: "fifo" }, // p
  115: { special: "socket" }, // s
  99: { special: "character device" }, // c
  98: { special: "block device" }, // b
  68: { special: "door" }, // D
};

/**
 * `%T@` as whole nanoseconds, exactly as lstat's mtimeNs gives them. find prints the two fields of the time
 * (seconds, then ten digits of nanoseconds) joined by a dot: before 1970 the seconds are negative and the
 * nanoseconds still count forwards (`-2.5000000000` is -1.5 s).
 */
export function nsOf(t: string): string {
  const dot = t.indexOf(".");
  const whole = dot < 0 ? t : t.slice(0, dot);
  const frac = (dot < 0 ? "" : t.slice(dot + 1, dot + 10)).padEnd(9, "0");
  const c = whole.charCodeAt(0);
  if (c > 0x30 && c <= 0x39) return `${whole}${frac}`; // after 1970: the digits joined
  return (BigInt(whole) * 1_000_000_000n + BigInt(frac)).toString();
}

/**
 * One line of find's stderr as an issue. find names the path in C-locale quotes (`'a\'b'`, `\n`, octal bytes);
 * the path is looked at again, so that the reason carries the real error code, as the walker's does.
 */
async function complaintItem(line: string, absRoot: string): Promise<CrawlItem> {
  const parsed = parseComplaint(line);
  const root = Buffer.from(absRoot, "utf8").toString("latin1");
  const prefix = `${root}/`;
  const rel =
    parsed === null
      ? null
      : parsed.path === root
        ? ""
        : parsed.path.startsWith(prefix)
          ? parsed.path.slice(prefix.length)
          : null;
  if (parsed === null || rel === null) {
    return {
      type: "issue",
      issue: { path: ".", reason: `the crawl reported: ${line}` },
      outcome: "failed",
      isEntry: false,
    };
  }
  const bytes = Buffer.from(rel, "latin1");
  const shown = isUtf8(bytes) ? bytes.toString("utf8") : escapeBytes(bytes);
  const abs = Buffer.from(parsed.path, "latin1");
  const st = await fs.lstat(abs).catch((err: Error) => err);
  if (st instanceof Error) return cannotStat(shown, errnoText(st));
  if (!st.isDirectory()) return cannotStat(shown, parsed.message);
  const listed = await fs.readdir(abs).catch((err: Error) => err);
  return cannotList(shown, listed instanceof Error ? errnoText(listed) : `find: ${parsed.message}`);
}

/** `find: 'PATH': MESSAGE` with PATH unquoted to its bytes (as a latin1 string), or null. */
export function parseComplaint(line: string): { path: string; message: string } | null {
  if (!line.startsWith("find: '")) return null;
  let out = "";
  let i = 7;
  for (; i < line.length && line[i] !== "'"; i++) {
    const c = line[i] as string;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = line[++i];
    if (e !== undefined && e >= "0" && e <= "7") {
      const oct = /^[0-7]{1,3}/.exec(line.slice(i))?.[0] ?? e;
      out += String.fromCharCode(Number.parseInt(oct, 8));
      i += oct.length - 1;
    } else out += ESCAPES[e ?? ""] ?? e ?? "";
  }
  if (line.slice(i, i + 3) !== "': ") return null;
  return { path: out, message: line.slice(i + 3) };
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
};
