/**
 * The two crawlers on one awkward tree, crawling as an unprivileged user (file modes bite only then), with the
 * real GNU find: every entry and every issue the same, whatever their order.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { autoCrawler, type Crawler } from "../../toc/crawl.ts";
import { unprivileged } from "../helpers/run.ts";

const DUMP = path.join(import.meta.dirname, "../helpers/crawl-dump.ts");

describe("crawl: find and the walker agree", { timeout: 60_000 }, () => {
  let tmp: string;
  let src: string;
  // A listening socket's file lasts until the server closes.
  const server = net.createServer();
  const locked = ["locked dir", "we'ird \\ dir", "new\nline", "verschlossen-ü"];

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-crawl-"));
    await fs.chmod(tmp, 0o755);
    src = path.join(tmp, "src");
    await fs.mkdir(path.join(src, "a/b/c"), { recursive: true });
    for (let i = 0; i < 300; i++) await fs.writeFile(path.join(src, "a/b", `f${i}.txt`), "x".repeat(i));
    await fs.writeFile(path.join(src, "a/b/c/deep.bin"), Buffer.alloc(70_000));
    await fs.writeFile(path.join(src, "ünïcödé 名前.txt"), "u");
    await fs.writeFile(path.join(src, " spaced  name "), "s");
    execFileSync("touch", ["-h", "-d", "2021-02-03 04:05:06.123456789 UTC", path.join(src, "a/b/f7.txt")]);
    execFileSync("touch", ["-h", "-d", "1969-07-20 20:17:40.5 UTC", path.join(src, " spaced  name ")]);
    await fs.symlink("a/b", path.join(src, "link-to-dir"));
    await fs.symlink("/nowhere/at/all", path.join(src, "dangling"));
    execFileSync("mkfifo", [path.join(src, "pipe")]);
    await new Promise<void>((r) => server.listen(path.join(src, "sock"), r));
    const bad = (name: number[]) => Buffer.concat([Buffer.from(`${src}/`), Buffer.from(name)]);
    await fs.writeFile(bad([0x62, 0x61, 0x64, 0xff, 0xfe]), "latin-1 name");
    await fs.mkdir(bad([0x64, 0x69, 0x72, 0xe9]));
    await fs.writeFile(Buffer.concat([bad([0x64, 0x69, 0x72, 0xe9]), Buffer.from("/inside.txt")]), "i");
    for (const d of locked) {
      await fs.mkdir(path.join(src, d));
      await fs.writeFile(path.join(src, d, "hidden.txt"), "h");
    }
    execFileSync("chown", ["-R", "65534:65534", src]);
    for (const d of locked) await fs.chmod(path.join(src, d), 0o000);
  });

  after(async () => {
    server.close();
    for (const d of locked) await fs.chmod(path.join(src, d), 0o755).catch(() => {});
    await fs.rm(tmp, { recursive: true, force: true });
  });

  const dump = (root: string, crawler: Crawler): { order: string[]; sorted: string[] } => {
    const out = execFileSync(process.execPath, ["--import", "tsx", DUMP, root, crawler], {
      ...unprivileged(),
      encoding: "utf8",
    });
    const order = out.split("\n").filter((l) => l !== "");
    return { order, sorted: [...order].sort() };
  };

  it("yields the same items, with the walker's reasons and exact times", () => {
    const viaFind = dump(src, "find");
    const viaWalk = dump(src, "walk");
    assert.deepEqual(viaFind.sorted, viaWalk.sorted);
    const items = viaFind.order.map((l) => JSON.parse(l));
    const issue = (p: string) => items.find((i) => i.type === "issue" && i.issue.path === p);
    const entry = (p: string) => items.find((i) => i.type === "entry" && i.entry.path === p)?.entry;
    assert.equal(items[0].entry.path, ".");
    for (const d of locked) {
      assert.equal(entry(d)?.kind, "dir", d);
      assert.equal(issue(d)?.issue.reason, "cannot list directory (EACCES): its contents were not copied", d);
      assert.equal(issue(d)?.isEntry, false);
    }
    assert.equal(issue("pipe")?.issue.reason, "special file (fifo): not copied");
    assert.equal(issue("sock")?.issue.reason, "special file (socket): not copied");
    assert.equal(issue("bad\\xff\\xfe")?.outcome, "failed");
    // A directory whose name is not UTF-8 is one issue; its contents go with it.
    assert.equal(issue("dir\\xe9")?.isEntry, true);
    assert.equal(items.filter((i) => /not valid UTF-8/.test(i.issue?.reason ?? "")).length, 2);
    assert.equal(entry("a/b/f7.txt")?.mtimeNs, "1612325106123456789");
    assert.equal(entry("a/b/f7.txt")?.size, 7);
    assert.equal(entry(" spaced  name ")?.mtimeNs, "-14182939500000000");
    assert.equal(entry("a/b/c/deep.bin")?.size, 70_000);
    assert.equal(entry("link-to-dir")?.kind, "symlink");
    assert.equal(entry("link-to-dir/f1.txt"), undefined, "a symlink is never followed");
    assert.equal(entry("dangling")?.size, "/nowhere/at/all".length);
    assert.equal(entry("ünïcödé 名前.txt")?.kind, "file");
    assert.equal(items.filter((i) => i.type === "entry").length, 1 + 3 + 300 + 1 + 2 + 2 + locked.length);
  });

  it("find names a directory before its contents, and follows a root that is a symlink", async () => {
    const order = dump(src, "find").order.map((l) => JSON.parse(l));
    const at = (p: string) => order.findIndex((i) => i.entry?.path === p);
    assert.ok(at("a") < at("a/b") && at("a/b") < at("a/b/f0.txt") && at("a/b") < at("a/b/c/deep.bin"));
    const link = path.join(tmp, "root-link");
    await fs.symlink(src, link);
    assert.deepEqual(dump(link, "find").sorted, dump(src, "find").sorted);
  });

  it("walks trees without subdirectories, or with one level only, as the walker does", async () => {
    const flat = path.join(tmp, "flat");
    await fs.mkdir(path.join(flat, "only-dir"), { recursive: true });
    await fs.writeFile(path.join(flat, "f.txt"), "f");
    const empty = path.join(tmp, "empty");
    await fs.mkdir(empty);
    for (const root of [flat, empty, path.join(flat, "only-dir")]) {
      const viaFind = dump(root, "find").sorted;
      assert.deepEqual(viaFind, dump(root, "walk").sorted, root);
      assert.ok(
        viaFind.every((l) => !l.includes('"path":"./')),
        "no path of the current directory",
      );
    }
    assert.equal(dump(flat, "find").sorted.length, 3);
  });

  it("auto takes find on a local disk", () => {
    assert.equal(autoCrawler(src), "find");
  });
});
