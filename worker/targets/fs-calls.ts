/**
 * How a worker makes its file system calls. Through the thread pool (`threads`), many calls are in flight at
 * once: what a network or FUSE filesystem needs, where each call is a round trip. On local filesystems a call
 * takes a few microseconds and handing it to a thread costs several times more than the call itself, so
 * there the worker makes them itself, one after another (`direct`), and lets its event loop run between them
 * every few milliseconds. `auto` takes `direct` only when both the source and the target are local.
 */
import { type BigIntStats, constants, promises as fsp, default as fsSync } from "node:fs";
import { isRemoteFs } from "../../core/filesystems.ts";

export type Awaitable<T> = T | Promise<T>;

export type FsCallsSetting = "auto" | "direct" | "threads";

export interface FsCalls {
  readonly direct: boolean;
  /** Between entries: a turn for the event loop when it is due (direct calls never give one by themselves). */
  breathe(): Promise<void> | undefined;
  lstat(p: string): Awaitable<BigIntStats>;
  /** The lstat, or null when nothing is there. */
  lstatOrNull(p: string): Awaitable<BigIntStats | null>;
  realpath(p: string): Awaitable<string>;
  mkdirp(p: string): Awaitable<unknown>;
  /** Fails with EEXIST when `exclusive` and something is at `dst` (a symlink too). */
  copyFile(src: string, dst: string, exclusive: boolean): Awaitable<void>;
  readlink(p: string): Awaitable<string>;
  symlink(target: string, p: string): Awaitable<void>;
  unlink(p: string): Awaitable<void>;
  lchown(p: string, uid: number, gid: number): Awaitable<void>;
  chmod(p: string, mode: number): Awaitable<void>;
  utimes(p: string, atime: number, mtime: number): Awaitable<void>;
  lutimes(p: string, atime: number, mtime: number): Awaitable<void>;
  /** A whole file, and its fstat once read (to tell whether it moved meanwhile). */
  readWhole(p: string): Awaitable<{ body: Buffer; after: BigIntStats }>;
}

export const threadCalls: FsCalls = {
  direct: false,
  breathe: () => undefined,
  lstat: (p) => fsp.lstat(p, { bigint: true }),
  lstatOrNull: (p) =>
    fsp.lstat(p, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    }),
  realpath: (p) => fsp.realpath(p),
  mkdirp: (p) => fsp.mkdir(p, { recursive: true }),
  copyFile: (src, dst, exclusive) => fsp.copyFile(src, dst, exclusive ? constants.COPYFILE_EXCL : 0),
  readlink: (p) => fsp.readlink(p),
  symlink: (target, p) => fsp.symlink(target, p),
  unlink: (p) => fsp.unlink(p),
  lchown: (p, uid, gid) => fsp.lchown(p, uid, gid),
  chmod: (p, mode) => fsp.chmod(p, mode),
  utimes: (p, a, m) => fsp.utimes(p, a, m),
  lutimes: (p, a, m) => fsp.lutimes(p, a, m),
  readWhole: async (p) => {
    const fh = await fsp.open(p, "r");
    try {
      const body = await fh.readFile();
      return { body, after: await fh.stat({ bigint: true }) };
    } finally {
      await fh.close();
    }
  },
};

export const directCalls: FsCalls = {
  direct: true,
  breathe: () => breather.breathe(),
  lstat: (p) => fsSync.lstatSync(p, { bigint: true }),
  lstatOrNull: (p) => fsSync.lstatSync(p, { bigint: true, throwIfNoEntry: false }) ?? null,
  realpath: (p) => fsSync.realpathSync.native(p),
  mkdirp: (p) => fsSync.mkdirSync(p, { recursive: true }),
  copyFile: (src, dst, exclusive) => fsSync.copyFileSync(src, dst, exclusive ? constants.COPYFILE_EXCL : 0),
  readlink: (p) => fsSync.readlinkSync(p),
  symlink: (target, p) => fsSync.symlinkSync(target, p),
  unlink: (p) => fsSync.unlinkSync(p),
  lchown: (p, uid, gid) => fsSync.lchownSync(p, uid, gid),
  chmod: (p, mode) => fsSync.chmodSync(p, mode),
  utimes: (p, a, m) => fsSync.utimesSync(p, a, m),
  lutimes: (p, a, m) => fsSync.lutimesSync(p, a, m),
  readWhole: (p) => {
    const fd = fsSync.openSync(p, "r");
    try {
      const body = fsSync.readFileSync(fd);
      return { body, after: fsSync.fstatSync(fd, { bigint: true }) };
    } finally {
      fsSync.closeSync(fd);
    }
  },
};

/** The calls for the directories a target works in (existing ones: the source, and a directory target). */
export function chooseFsCalls(setting: FsCallsSetting, ...roots: string[]): FsCalls {
  if (setting === "direct") return directCalls;
  if (setting === "threads") return threadCalls;
  return roots.some(isRemoteFs) ? threadCalls : directCalls;
}

/**
 * Direct calls never give the event loop a turn by themselves: past `everyMs` of them, every caller waits for
 * the same turn (so messages, heartbeats and timers keep flowing), then all go on.
 */
export class Breather {
  private last = performance.now();
  private turn: Promise<void> | null = null;

  constructor(private readonly everyMs = 5) {}

  breathe(): Promise<void> | undefined {
    if (this.turn) return this.turn;
    if (performance.now() - this.last < this.everyMs) return undefined;
    this.turn = new Promise((resolve) =>
      setImmediate(() => {
        this.last = performance.now();
        this.turn = null;
        resolve();
      }),
    );
    return this.turn;
  }
}

/** One event loop per process: every target's direct calls share its turns. */
const breather = new Breather();
