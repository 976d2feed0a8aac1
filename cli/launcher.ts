/**
 * The launcher of a bundled program (`dist/s3-bucket-loader.mjs`, `dist/worker.mjs`): runs the program's CommonJS
 * bundle beside it (`….cjs`, which also runs on its own: the stack ships that file) from a V8 code cache, so that
 * a start does not compile the bundle again. Compiling it was a third of every start's CPU (about 0.1 s for the
 * worker, 0.15 s for the CLI, on each of the three processes of a local run).
 *
 * The cache is one file per bundle build, Node version and architecture, in a directory of the user's own under
 * the system's temporary directory (mode 0700; one owned by someone else, or open to others, is not used: a cache
 * is code). It is written at the end of a run, so that it holds the functions the run compiled too: when missing,
 * refused by V8, or made by a run that did much less (a `--help`). `NODE_DISABLE_COMPILE_CACHE` (Node's own
 * switch for its compile cache) turns it off.
 * Failing to read or write the cache costs only the compile: the program runs the same.
 */
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

/** Set by the build: the bundle's file name beside this launcher, and its content hash. */
declare const __BUNDLE_FILE__: string;
declare const __BUNDLE_HASH__: string;

/** Another build's cache unused this long is removed when a new one is written. */
const STALE_MS = 86_400_000;
/** A run that used this many times the CPU of the one that made the cache makes it again. */
const REMAKE_FACTOR = 2;
const HEADER_BYTES = 4;

const bundle = fileURLToPath(new URL(`./${__BUNDLE_FILE__}`, import.meta.url));
// The build writes the bundle in ASCII (read as latin1: no UTF-8 decoding of megabytes). A `#!` line (the
// bundle runs on its own too) becomes a comment, so that the lines stay where they are.
const source = readFileSync(bundle, "latin1").replace(/^#!/, "//");
const cache = cacheFile();
const cached = cache ? readCache(cache) : undefined;
const cachedData = cached?.data;
// Node's own wrapper of a CommonJS module, on the bundle's first line: its line numbers stay as they are.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  ...(cachedData ? { cachedData } : {}),
  // The bundle imports nothing dynamically today; should it, the import resolves as in any module.
  ...(vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER
    ? { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }
    : {}),
});
if (cache) {
  process.once("exit", () => {
    // A cache holds what the run that made it compiled: one of `--help` holds little. It is made again by a run
    // that did much more (twice the CPU), so that it settles on the cache of a real load after a few runs.
    const used = process.cpuUsage();
    const cpuMs = Math.round((used.user + used.system) / 1000);
    if (!cached || script.cachedDataRejected || cpuMs > REMAKE_FACTOR * cached.cpuMs)
      writeCache(cache, cpuMs);
  });
}
const main = { exports: {} };
script.runInThisContext()(main.exports, createRequire(bundle), main, bundle, path.dirname(bundle));

/** The cache file of this build on this Node, in a directory only this user can use; null: no cache. */
function cacheFile(): string | null {
  if (process.env.NODE_DISABLE_COMPILE_CACHE || typeof process.getuid !== "function") return null;
  const uid = process.getuid();
  const dir = path.join(os.tmpdir(), `s3-bucket-loader-code-cache-${uid}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (st.uid !== uid || (st.mode & 0o077) !== 0) return null;
  } catch {
    return null; // no writable temporary directory: the program runs without a cache
  }
  return path.join(dir, `${__BUNDLE_FILE__}-${__BUNDLE_HASH__}-${process.version}-${process.arch}.bin`);
}

/** A cache file: the CPU milliseconds of the run that made it (4 bytes), then V8's data. */
function readCache(file: string): { data: Buffer; cpuMs: number } | undefined {
  try {
    const bytes = readFileSync(file);
    if (bytes.length <= HEADER_BYTES) return undefined;
    const now = new Date();
    utimesSync(file, now, now); // in use: another build's writer keeps it
    return { cpuMs: bytes.readUInt32LE(0), data: bytes.subarray(HEADER_BYTES) };
  } catch {
    return undefined; // the first run of this build: it writes the cache at its end
  }
}

/**
 * Writes the cache whole or not at all (concurrent starts each write their own file, then rename), and drops the
 * caches of other builds of the same bundle untouched for a day (two installs in use keep theirs).
 */
function writeCache(file: string, cpuMs: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(Math.min(cpuMs, 0xffffffff), 0);
    writeFileSync(tmp, Buffer.concat([header, script.createCachedData()]), { mode: 0o600 });
    renameSync(tmp, file);
    const dir = path.dirname(file);
    for (const name of readdirSync(dir)) {
      const other = path.join(dir, name);
      if (!name.startsWith(`${__BUNDLE_FILE__}-`) || other === file) continue;
      if (Date.now() - statSync(other).mtimeMs > STALE_MS) rmSync(other, { force: true });
    }
  } catch {
    rmSync(tmp, { force: true }); // a full disk or a removed directory: the next start compiles again
  }
}
