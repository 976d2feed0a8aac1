import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { Crc32, compositeCrc32, crc32Base64 } from "../../core/checksum.ts";
import { ChangedWhileReading, partSize, readParts } from "../../worker/targets/s3-target.ts";
import { attrJson, contentTypeFor, keyOf, parseAttr } from "../../worker/targets/yas3fs-format.ts";

const st = {
  mode: 0o100640n,
  uid: 1234n,
  gid: 5678n,
  atimeNs: 1795463691_000000000n,
  mtimeNs: 1600000000_123456789n,
  ctimeNs: 1795463691_500000000n,
};

describe("yas3fs format", () => {
  it("lays out keys as yas3fs does: files plain, directories with a slash, the root as the prefix marker", () => {
    assert.equal(keyOf("g", "a/f.txt", "file"), "g/a/f.txt");
    assert.equal(keyOf("g", "a", "dir"), "g/a/");
    assert.equal(keyOf("g", "l", "symlink"), "g/l");
    assert.equal(keyOf("g", ".", "dir"), "g/");
    assert.equal(keyOf("", ".", "dir"), ".");
    assert.equal(keyOf("", "a/f.txt", "file"), "a/f.txt");
  });

  it("writes attr as compact JSON with the type bits in st_mode and the times as the doubles nearest them", () => {
    assert.equal(
      attrJson(st, 13),
      '{"st_mode":33184,"st_uid":1234,"st_gid":5678,"st_atime":1795463691,"st_mtime":1600000000.1234567,"st_ctime":1795463691.5,"st_size":13}',
    );
    const parsed = JSON.parse(attrJson(st, 13));
    assert.equal(parsed.st_mode & 0o170000, 0o100000, "S_IFREG");
    assert.ok(Buffer.byteLength(attrJson(st, 13)) < 2048);
  });

  it("reads attr back as yas3fs does (times as doubles), and reads what yas3fs itself writes", () => {
    assert.deepEqual(parseAttr(attrJson(st, 13)), {
      mode: 0o100640n,
      uid: 1234n,
      gid: 5678n,
      mtime: 1600000000.1234567,
      mtimeText: "1600000000.1234567",
      size: 13,
    });
    const theirs =
      '{"st_uid": 1234, "st_gid": 5678, "st_mode": 33184, "st_atime": 1795463691.0, "st_mtime": 1600000000.0, "st_ctime": 1795463691.0, "st_size": 13, "st_nlink": 1}';
    assert.deepEqual(parseAttr(theirs), {
      mode: 33184n,
      uid: 1234n,
      gid: 5678n,
      mtime: 1600000000,
      mtimeText: "1600000000.0",
      size: 13,
    });
    const dir =
      '{"st_uid": 42, "st_gid": 43, "st_atime": 1795463691.0, "st_mtime": 1795463352.4614775, "st_ctime": 1795463691.0, "st_size": 4096, "st_mode": 16877}';
    assert.equal(parseAttr(dir)?.mtime, 1795463352.4614775);
    assert.equal(parseAttr("not json"), null);
    assert.equal(parseAttr(undefined), null);
  });

  it("sets the Content-Types yas3fs sets", () => {
    assert.equal(contentTypeFor("file", "g/a/notes.txt"), "text/plain");
    assert.equal(contentTypeFor("file", "g/a/nested.bin"), "application/octet-stream");
    assert.equal(contentTypeFor("file", "g/noextension"), "application/octet-stream");
    assert.equal(contentTypeFor("file", "g/photo.JPG"), "image/jpeg");
    assert.equal(contentTypeFor("dir", "g/a"), "application/x-directory");
    assert.equal(contentTypeFor("symlink", "g/l.txt"), "application/x-symlink");
  });
});

describe("checksums and parts", () => {
  it("computes S3's CRC32 in base64, in one go or streamed", () => {
    assert.equal(crc32Base64("hello"), "NhCmhg==");
    assert.equal(new Crc32().update(Buffer.from("hel")).update(Buffer.from("lo")).base64(), "NhCmhg==");
    assert.match(compositeCrc32(["NhCmhg==", "NhCmhg=="]), /^[A-Za-z0-9+/]{6}==-2$/);
  });

  it("chooses parts so that no file needs over 10,000 of them", () => {
    const mib = 1024 * 1024;
    assert.equal(partSize(100 * mib, 8 * mib), 8 * mib);
    const huge = 5 * 1024 * 1024 * mib; // 5 TiB
    assert.ok(Math.ceil(huge / partSize(huge, 8 * mib)) <= 10_000);
    assert.equal(partSize(huge, 8 * mib) % mib, 0);
  });

  it("notices a file that grows while it is read, instead of uploading a mix", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-grow-"));
    try {
      const file = path.join(dir, "growing.bin");
      await fs.writeFile(file, Buffer.alloc(3 * 1024, 1));
      const before = await fs.lstat(file, { bigint: true });
      const parts = readParts(file, before, 1024, new Crc32());
      assert.equal((await parts.next()).value?.length, 1024);
      await fs.appendFile(file, "more");
      await assert.rejects(async () => {
        for await (const _ of parts) {
          // drain
        }
      }, ChangedWhileReading);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("yas3fs cache invalidation", () => {
  it("resets each touched directory, or their deepest common ancestor when there are too many", async () => {
    const { resetsFor } = await import("../../worker/yas3fs-notifier.ts");
    assert.deepEqual(resetsFor(["/a/b", "/a/c", "/a/b"], 5), ["/a/b", "/a/c"]);
    assert.deepEqual(resetsFor(["/a/b/x", "/a/b/y", "/a/c"], 2), ["/a"]);
    assert.deepEqual(resetsFor(["/a", "/b", "/c"], 2), ["/"]);
  });
});
