/**
 * How a worker makes its file system calls. Through the thread pool (`threads`), many calls are in flight at
 * once: what a network or FUSE filesystem needs, where each call is a round trip. On local filesystems a call
 * takes a few microseconds and handing it to a thread costs several times more than the call itself, so
 * there the worker makes them itself, one after another (`direct`), and lets its event loop run between them
 * every few milliseconds. `auto` takes `direct` only when both the source and the target are local.
 */
import { type BigIntStats, constants, promises as fsp, default as fsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { isRemoteFs } from "../../core/filesystems.ts";
import { type UtimesRounding, utimesResult } from "./times.ts";

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
  /** Makes `p` and the directories above it that are missing; the first one it made (none: undefined). */
  mkdirp(p: string): Awaitable<string | undefined>;
  /** Fails with EEXIST when `exclusive` and something is at `dst` (a symlink too). */
  copyFile(src: string, dst: string, exclusive: boolean): Awaitable<void>;
  readlink(p: string): Awaitable<string>;
  symlink(target: string, p: string): Awaitable<void>;
  unlink(p: string): Awaitable<void>;
  lchown(p: string, uid: number, gid: number): Awaitable<void>;
  chmod(p: string, mode: number): Awaitable<void>;
  /** Times in seconds as numeric strings (see times.ts `utimesSeconds`): a negative number would mean "now". */
  utimes(p: string, atime: string, mtime: string): Awaitable<void>;
  lutimes(p: string, atime: string, mtime: string): Awaitable<void>;
  /**
   * Opens a source file for reading without following a symlink at its last step (ELOOP then) and without
   * blocking on a FIFO: what is opened is then checked against the crawl.
   */
  openSource(p: string): Awaitable<SourceHandle>;
  /** Copies an opened source file to `dst`, with its mode; EEXIST when `exclusive` and `dst` exists. */
  copyOpened(src: SourceHandle, dst: string, exclusive: boolean): Awaitable<void>;
}

/** An open source file or directory. */
export interface SourceHandle {
  readonly fd: number;
  stat(): Awaitable<BigIntStats>;
  /**
   * The whole file, from its start: `size` bytes when the size is known (from the handle's stat), in one read
   * into a buffer of that size; fewer if the file is shorter now (the caller compares with its stat).
   */
  read(size?: number): Awaitable<Buffer>;
  close(): Awaitable<void>;
}

const O_SOURCE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * On Linux an open file is reachable by `/proc/self/fd/N`, which copyFile (kernel copy, reflinks) can open
 * again: the copy is then of the very file that was checked, whatever its path leads to meanwhile. Elsewhere
 * the opened file is copied through its descriptor.
 */
const PROC_FD = fsSync.existsSync("/proc/self/fd");
const procPath = (fd: number) => `/proc/self/fd/${fd}`;
const COPY_CHUNK = 1024 * 1024;

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
  openSource: async (p) => {
    const fh = await fsp.open(p, O_SOURCE);
    return {
      fd: fh.fd,
      stat: () => fh.stat({ bigint: true }),
      read: async (size) => {
        if (size === undefined) return fh.readFile();
        const buf = Buffer.allocUnsafe(size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await fh.read(buf, got, size - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return got === size ? buf : buf.subarray(0, got);
      },
      close: () => fh.close(),
    };
  },
  copyOpened: async (src, dst, exclusive) => {
    if (!PROC_FD) return copyThroughFd(src.fd, dst, exclusive);
    return fsp.copyFile(procPath(src.fd), dst, exclusive ? constants.COPYFILE_EXCL : 0);
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
  openSource: (p) => {
    const fd = fsSync.openSync(p, O_SOURCE);
    return {
      fd,
      stat: () => fsSync.fstatSync(fd, { bigint: true }),
      read: (size) => {
        if (size === undefined) return fsSync.readFileSync(fd);
        const buf = Buffer.allocUnsafe(size);
        let got = 0;
        while (got < size) {
          const n = fsSync.readSync(fd, buf, got, size - got, got);
          if (n === 0) break;
          got += n;
        }
        return got === size ? buf : buf.subarray(0, got);
      },
      close: () => fsSync.closeSync(fd),
    };
  },
  copyOpened: (src, dst, exclusive) => {
    if (!PROC_FD) return copyThroughFd(src.fd, dst, exclusive);
    fsSync.copyFileSync(procPath(src.fd), dst, exclusive ? constants.COPYFILE_EXCL : 0);
  },
};

/** The copy where no `/proc/self/fd` reaches an open file: read from the descriptor, written to `dst`. */
function copyThroughFd(fd: number, dst: string, exclusive: boolean): void {
  const mode = Number(fsSync.fstatSync(fd).mode & 0o7777);
  const out = fsSync.openSync(dst, exclusive ? "wx" : "w", mode);
  try {
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    for (let pos = 0; ; ) {
      const n = fsSync.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      fsSync.writeSync(out, buf, 0, n);
      pos += n;
    }
    fsSync.fchmodSync(out, mode);
  } finally {
    fsSync.closeSync(out);
  }
}

let rounding: UtimesRounding | undefined;

/**
 * Which rounding this runtime's `utimes` makes (see times.ts), measured once on a file in the temporary
 * directory: a double that sets 500 ns past a microsecond keeps them (`ns`) or loses them (`us`).
 */
export function utimesRounding(): UtimesRounding {
  if (rounding) return rounding;
  const d = 1_000_000_000.0000005;
  let dir: string | undefined;
  try {
    dir = fsSync.mkdtempSync(path.join(os.tmpdir(), "s3bl-utimes-"));
    const f = path.join(dir, "probe");
    fsSync.writeFileSync(f, "");
    fsSync.utimesSync(f, d, d);
    const got = fsSync.statSync(f, { bigint: true }).mtimeNs;
    rounding = got === utimesResult(d, "ns") ? "ns" : got === utimesResult(d, "us") ? "us" : "either";
  } catch {
    rounding = "either"; // not measurable here: times are then set so that they are right under both
  } finally {
    if (dir) fsSync.rmSync(dir, { recursive: true, force: true });
  }
  return rounding;
}

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
