/**
 * The launchers of the built programs (dist/*.mjs) run their CommonJS bundle from a V8 code cache: written by the
 * first start, used by the next, replaced when V8 refuses it, never read from a directory others can write,
 * and off with NODE_DISABLE_COMPILE_CACHE. The bundle itself runs on its own, the same.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const DIST = fileURLToPath(new URL("../../dist/", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "s3bl-launcher-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** `node FILE --help` with its own temporary directory; its exit code and output. */
function run(file: string, tmpdir: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(DIST, file), "--help"], {
    env: { ...process.env, TMPDIR: tmpdir, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const cacheDir = (tmpdir: string) => path.join(tmpdir, `s3-bucket-loader-code-cache-${process.getuid?.()}`);
const cacheFiles = (tmpdir: string) =>
  fs.existsSync(cacheDir(tmpdir))
    ? fs.readdirSync(cacheDir(tmpdir)).map((n) => path.join(cacheDir(tmpdir), n))
    : [];

describe("the programs' launchers", () => {
  for (const name of ["s3-bucket-loader", "worker"]) {
    it(`${name}: the first start writes a cache for this build and this Node, the next uses it`, () => {
      const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
      const first = run(`${name}.mjs`, dir);
      assert.equal(first.code, 0, first.err);
      assert.match(first.out, /--help/);
      const files = cacheFiles(dir);
      assert.equal(files.length, 1, `one cache file: ${files.join(", ")}`);
      const file = files[0] ?? "";
      assert.match(
        path.basename(file),
        new RegExp(
          `^${name}\\.cjs-[0-9a-f]{16}-${process.version.replace(/\./g, "\\.")}-${process.arch}\\.bin$`,
        ),
      );
      assert.equal(fs.statSync(cacheDir(dir)).mode & 0o777, 0o700);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const written = fs.readFileSync(file);
      assert.ok(written.length > 100_000, `a cache of the bundle's code: ${written.length} bytes`);

      const second = run(`${name}.mjs`, dir);
      assert.equal(second.code, 0, second.err);
      assert.equal(second.out, first.out);
      assert.deepEqual(fs.readFileSync(file), written, "accepted, so not written again");

      // The bundle on its own (what the stack ships) does the same, without a cache.
      const alone = run(`${name}.cjs`, path.join(tmp, "unused"));
      assert.equal(alone.code, 0, alone.err);
      assert.equal(alone.out.replace(`${name}.cjs`, `${name}.mjs`), first.out);
    });
  }

  it("makes the cache again after a run that did more than twice the work of the one that made it", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "remade-"));
    run("worker.mjs", dir);
    const file = cacheFiles(dir)[0] ?? "";
    const made = fs.readFileSync(file);
    const madeCpuMs = made.readUInt32LE(0);
    assert.ok(madeCpuMs > 0, `the CPU of the run that made it: ${madeCpuMs} ms`);
    // As if a run of a millisecond had made it: the next run does more, and makes it anew.
    const light = Buffer.from(made);
    light.writeUInt32LE(1, 0);
    fs.writeFileSync(file, light);
    const again = run("worker.mjs", dir);
    assert.equal(again.code, 0, again.err);
    assert.ok(fs.readFileSync(file).readUInt32LE(0) > 2, "made again, by a run of more than 2 ms");
  });

  it("replaces a cache V8 refuses, and the program runs the same", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "refused-"));
    const good = run("worker.mjs", dir);
    const file = cacheFiles(dir)[0] ?? "";
    fs.writeFileSync(file, Buffer.alloc(4096, 7));
    const again = run("worker.mjs", dir);
    assert.equal(again.code, 0, again.err);
    assert.equal(again.out, good.out);
    const now = fs.readFileSync(file);
    assert.ok(now.length > 100_000 && !now.equals(Buffer.alloc(4096, 7)), "written anew");
  });

  it("neither reads nor writes a cache directory that others can write, nor one turned off", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "open-"));
    fs.mkdirSync(cacheDir(dir), { mode: 0o777 });
    fs.chmodSync(cacheDir(dir), 0o777);
    const planted = path.join(cacheDir(dir), "planted.bin");
    fs.writeFileSync(planted, "x");
    const r = run("worker.mjs", dir);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(cacheFiles(dir), [planted], "nothing written beside another's file");

    const off = fs.mkdtempSync(path.join(tmp, "off-"));
    const o = run("worker.mjs", off, { NODE_DISABLE_COMPILE_CACHE: "1" });
    assert.equal(o.code, 0, o.err);
    assert.equal(fs.existsSync(cacheDir(off)), false);
  });
});
