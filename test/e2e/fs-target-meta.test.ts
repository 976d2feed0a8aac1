/**
 * The directory target's owner and mode, both ways of making calls, on real files: a new file in a
 * set-group-ID directory (which hands it the directory's group), set-ID modes (which writing clears), files
 * owned by us and by others. Owners only bite as root.
 */
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { FsTarget } from "../../worker/targets/fs-target.ts";

const isRoot = process.getuid?.() === 0;

describe("fs target: owner and mode of new files", { timeout: 30_000 }, () => {
  let tmp: string;
  let src: string;
  const files = [
    { name: "ours.txt", mode: 0o644, uid: 0, gid: 0 },
    { name: "theirs.txt", mode: 0o640, uid: 1234, gid: 5678 },
    { name: "setuid.bin", mode: 0o4755, uid: 0, gid: 0 },
    { name: "setgid-theirs.bin", mode: 0o2750, uid: 1234, gid: 5678 },
    { name: "sticky.txt", mode: 0o1644, uid: 0, gid: 0 },
  ];

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-meta-"));
    src = path.join(tmp, "src");
    await fs.mkdir(path.join(src, "shared"), { recursive: true });
    for (const f of files) {
      for (const dir of ["", "shared"]) {
        const p = path.join(src, dir, f.name);
        await fs.writeFile(p, `${f.name}\n`);
        if (isRoot) await fs.chown(p, f.uid, f.gid);
        await fs.chmod(p, f.mode);
      }
    }
  });

  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  for (const calls of ["direct", "threads"] as const) {
    it(`copies owner and mode exactly, also into a set-group-ID directory (${calls} calls)`, async () => {
      const dst = path.join(tmp, `dst-${calls}`);
      // The target's "shared" directory exists already, set-group-ID, group 4242: new files get that group.
      await fs.mkdir(path.join(dst, "shared"), { recursive: true });
      if (isRoot) await fs.chown(path.join(dst, "shared"), 0, 4242);
      await fs.chmod(path.join(dst, "shared"), 0o2775);
      const target = new FsTarget({
        sourceRoot: src,
        targetRoot: dst,
        preserveOwner: isRoot,
        validate: "attrs",
        fsCalls: calls,
      });
      await target.init();
      assert.equal(target.fsCalls, calls);
      for (const f of files) {
        for (const dir of ["", "shared"]) {
          const rel = dir ? `${dir}/${f.name}` : f.name;
          const st = await fs.lstat(path.join(src, rel), { bigint: true });
          const entry = {
            path: rel,
            kind: "file" as const,
            size: Number(st.size),
            mtimeNs: st.mtimeNs.toString(),
          };
          const out = await target.write(entry, "content");
          assert.equal(out.status, "ok", `${rel}: ${out.reason ?? ""}`);
          const got = await fs.lstat(path.join(dst, rel));
          assert.equal((got.mode & 0o7777).toString(8), f.mode.toString(8), `${rel} mode`);
          if (isRoot) assert.deepEqual([got.uid, got.gid], [f.uid, f.gid], `${rel} owner`);
          const check = await target.check(entry);
          assert.equal(check.status, "ok", `${rel} validates: ${check.reason ?? ""}`);
        }
      }
    });
  }
});

describe("fs target: directory times when empty directories come before their parents", {
  timeout: 30_000,
}, () => {
  let tmp: string;
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  for (const calls of ["direct", "threads"] as const) {
    it(`keeps every directory's time when one entry makes several levels (${calls} calls)`, async () => {
      tmp ??= await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-dirtimes-"));
      // As in Debian's icons/hicolor: empty directories two levels below a directory whose own entry was
      // handled first (another worker's batch), their middle level not made yet.
      const src = path.join(tmp, `src-${calls}`);
      const dst = path.join(tmp, `dst-${calls}`);
      await fs.mkdir(path.join(src, "icons/hicolor/16x16/apps"), { recursive: true });
      await fs.mkdir(path.join(src, "icons/hicolor/32x32/apps"), { recursive: true });
      const old = new Date("2020-01-02T03:04:05Z");
      for (const d of [
        "icons/hicolor/16x16/apps",
        "icons/hicolor/32x32/apps",
        "icons/hicolor/16x16",
        "icons/hicolor/32x32",
        "icons/hicolor",
        "icons",
      ])
        await fs.utimes(path.join(src, d), old, old);
      const target = new FsTarget({
        sourceRoot: src,
        targetRoot: dst,
        preserveOwner: false,
        validate: "attrs",
        fsCalls: calls,
      });
      await target.init();
      const entry = async (rel: string) => {
        const st = await fs.lstat(path.join(src, rel), { bigint: true });
        return { path: rel, kind: "dir" as const, size: 0, mtimeNs: st.mtimeNs.toString() };
      };
      const order = [
        "icons",
        "icons/hicolor",
        "icons/hicolor/16x16/apps",
        "icons/hicolor/32x32/apps",
        "icons/hicolor/16x16",
        "icons/hicolor/32x32",
      ];
      for (const rel of order) {
        const out = await target.write(await entry(rel), "dirs");
        assert.equal(out.status, "ok", `${rel}: ${out.reason ?? ""}`);
      }
      for (const rel of order) {
        const check = await target.check(await entry(rel));
        assert.equal(check.status, "ok", `${rel} validates: ${check.reason ?? ""}`);
        assert.equal(
          (await fs.lstat(path.join(dst, rel))).mtime.toISOString(),
          old.toISOString(),
          `${rel} mtime`,
        );
      }
    });
  }
});
