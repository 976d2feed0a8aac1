/**
 * The bad-input corpus: one source tree with over forty kinds of awkward entries, each with its defined
 * outcome (copied, or reported with a reason), loaded into a directory by an unprivileged user and into S3.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import type { RunReport } from "../../master/report.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startLocal, unprivileged } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

type Outcome = { copied: true } | { failed: RegExp } | { skipped: RegExp };
interface Kind {
  readonly name: string;
  /** The entry's path relative to the source root, as the report names it. */
  readonly path: string;
  make(abs: string): Promise<void>;
  /** On a directory target (unprivileged), and on an S3 target (the default: the same). */
  readonly fs: Outcome;
  readonly s3?: Outcome;
}

const copied = { copied: true } as const;
const file =
  (content = "x\n") =>
  (abs: string) =>
    fs.writeFile(abs, content);
const long = "d".repeat(200);
const deep = Array.from({ length: 6 }, (_, i) => `${long}${i}`).join("/");

const KINDS: Kind[] = [
  { name: "space", path: "a b.txt", make: file(), fs: copied },
  { name: "tab", path: "a\tb.txt", make: file(), fs: copied },
  { name: "newline", path: "a\nb.txt", make: file(), fs: copied },
  { name: "backslash", path: "a\\b.txt", make: file(), fs: copied },
  { name: "double quote", path: 'a"b.txt', make: file(), fs: copied },
  { name: "single quote", path: "a'b.txt", make: file(), fs: copied },
  { name: "leading dash", path: "-rf", make: file(), fs: copied },
  { name: "leading dot", path: ".profile", make: file(), fs: copied },
  { name: "hidden directory", path: ".git", make: (a) => fs.mkdir(a), fs: copied },
  { name: "file in a hidden directory", path: ".git/HEAD", make: file("ref\n"), fs: copied },
  { name: "percent", path: "100%.txt", make: file(), fs: copied },
  { name: "plus", path: "a+b.txt", make: file(), fs: copied },
  { name: "hash", path: "#1.txt", make: file(), fs: copied },
  { name: "question mark", path: "why?.txt", make: file(), fs: copied },
  { name: "asterisk", path: "all*.txt", make: file(), fs: copied },
  { name: "brackets and braces", path: "[a]{b}.txt", make: file(), fs: copied },
  { name: "equals and comma", path: "k=v,w.txt", make: file(), fs: copied },
  { name: "trailing space", path: "trailing ", make: file(), fs: copied },
  { name: "only spaces", path: "   ", make: file(), fs: copied },
  { name: "emoji", path: "rocket 🚀.txt", make: file(), fs: copied },
  { name: "NFC form", path: "caf\u00e9.txt", make: file("nfc\n"), fs: copied },
  { name: "NFD form of the same name", path: "cafe\u0301.txt", make: file("nfd\n"), fs: copied },
  { name: "255-byte name", path: "n".repeat(255), make: file(), fs: copied },
  {
    name: "deep directories",
    path: deep.split("/").slice(0, 1).join("/"),
    make: (a) => fs.mkdir(a),
    fs: copied,
  },
  {
    name: "path over S3's 1,024-byte key limit",
    path: `${deep}/f.txt`,
    make: async (a) => {
      await fs.mkdir(path.dirname(a), { recursive: true });
      await fs.writeFile(a, "deep\n");
    },
    fs: copied,
    s3: { failed: /key is \d+ bytes, over S3's limit of 1024/ },
  },
  { name: "empty file", path: "empty", make: file(""), fs: copied },
  { name: "empty directory", path: "empty dir", make: (a) => fs.mkdir(a), fs: copied },
  { name: "relative symlink", path: "rel-link", make: (a) => fs.symlink("a b.txt", a), fs: copied },
  { name: "absolute symlink", path: "abs-link", make: (a) => fs.symlink("/etc/hostname", a), fs: copied },
  { name: "dangling symlink", path: "dangling", make: (a) => fs.symlink("no/such/file", a), fs: copied },
  { name: "symlink loop (first)", path: "loop-a", make: (a) => fs.symlink("loop-b", a), fs: copied },
  { name: "symlink loop (second)", path: "loop-b", make: (a) => fs.symlink("loop-a", a), fs: copied },
  {
    name: "symlink to a directory (not followed)",
    path: "to-dir",
    make: (a) => fs.symlink(".git", a),
    fs: copied,
  },
  {
    name: "hard link (copied as a file of its own)",
    path: "hard link",
    make: (a) => fs.link(path.join(path.dirname(a), "a b.txt"), a),
    fs: copied,
  },
  {
    name: "sparse file",
    path: "sparse.img",
    make: async (a) => {
      const h = await fs.open(a, "w");
      await h.write("end", 4 * 1024 * 1024);
      await h.close();
    },
    fs: copied,
  },
  {
    name: "set-uid bit",
    path: "setuid",
    make: async (a) => {
      await fs.writeFile(a, "#!/bin/sh\n");
      await fs.chmod(a, 0o4755);
    },
    fs: copied,
  },
  {
    name: "very old mtime",
    path: "old",
    make: async (a) => {
      await fs.writeFile(a, "old\n");
      await fs.utimes(a, 86_400, 86_400);
    },
    fs: copied,
  },
  {
    name: "future mtime",
    path: "future",
    make: async (a) => {
      await fs.writeFile(a, "future\n");
      await fs.utimes(a, 4_102_444_800, 4_102_444_800);
    },
    fs: copied,
  },
  { name: "3 MiB file", path: "big.bin", make: file("z".repeat(3 * 1024 * 1024)), fs: copied },
  {
    name: "FIFO",
    path: "fifo",
    make: async (a) => void execFileSync("mkfifo", [a]),
    fs: { skipped: /special file \(fifo\)/ },
  },
  {
    name: "socket",
    path: "sock",
    // A socket file that outlives its server: bound, never unlinked.
    make: async (a) =>
      void execFileSync("python3", [
        "-c",
        "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
        a,
      ]),
    fs: { skipped: /special file \(socket\)/ },
  },
  {
    name: "character device",
    path: "null-dev",
    make: async (a) => void execFileSync("mknod", [a, "c", "1", "3"]),
    fs: { skipped: /special file \(character device\)/ },
  },
  {
    name: "unreadable file",
    path: "secret.txt",
    make: async (a) => {
      await fs.writeFile(a, "secret\n");
      await fs.chmod(a, 0o000);
    },
    fs: { failed: /permission denied/ },
    s3: copied, // S3 loads run as root here: the file can be read
  },
  {
    name: "name that is not UTF-8",
    path: "bad-\\xff.txt",
    make: (a) =>
      fs.writeFile(
        Buffer.concat([
          Buffer.from(a.replace("bad-\\xff.txt", "bad-")),
          Buffer.from([0xff]),
          Buffer.from(".txt"),
        ]),
        "x",
      ),
    fs: { failed: /not valid UTF-8/ },
  },
];

const isRoot = process.getuid?.() === 0;

describe(`the bad-input corpus (${KINDS.length} kinds)`, { timeout: 240_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let src: string;

  before(async () => {
    assert.ok(KINDS.length >= 40);
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-corpus-"));
    await fs.chmod(tmp, 0o777);
    src = path.join(tmp, "src");
    await fs.mkdir(src);
    for (const k of KINDS) {
      if (!isRoot && k.name === "character device") continue;
      await k.make(path.join(src, k.path));
    }
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const load = async (target: string, as: { uid?: number; gid?: number }) => {
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: `corpus-${path.basename(target).replace(/\W/g, "")}`,
      source: src,
      target,
      args: ["--workers", "2"],
      as,
    });
    const { code } = await run.exited;
    assert.equal(code, 1, `some kinds fail by design: exit 1\n${run.stderr().slice(-2000)}`);
    return run.report();
  };

  const check = (report: RunReport, outcomeOf: (k: Kind) => Outcome) => {
    for (const k of KINDS) {
      if (!isRoot && k.name === "character device") continue;
      const want = outcomeOf(k);
      const err = report.errors.find((e) => e.path === k.path);
      const skip = report.skipped.find((e) => e.path === k.path);
      if ("copied" in want) {
        assert.equal(err, undefined, `${k.name}: not reported as failed`);
        assert.equal(skip, undefined, `${k.name}: not skipped`);
      } else if ("failed" in want) {
        assert.match(err?.reason ?? "(no error)", want.failed, k.name);
      } else {
        assert.match(skip?.reason ?? "(not skipped)", want.skipped, k.name);
      }
    }
    // Nothing silent: every entry is accounted for.
    const w = report.write;
    assert.equal(w.ok + w.failed + w.skipped + w.unchanged + report.notAttempted, report.entries);
    assert.equal(report.notAttempted, 0);
    assert.equal(
      report.validate.failed,
      0,
      JSON.stringify(report.errors.filter((e) => e.phase === "VALIDATE")),
    );
  };

  it("loads into a directory as an unprivileged user: each kind copied or reported as defined", async () => {
    const target = path.join(tmp, "dst");
    const report = await load(target, unprivileged());
    check(report, (k) => k.fs);
    const notCopied = new Set(KINDS.filter((k) => !("copied" in k.fs)).map((k) => k.path));
    for (const p of await listTree(src)) if (p.startsWith("bad-")) notCopied.add(p);
    assert.deepEqual(await diffTrees(src, target, { owner: false, except: notCopied }), []);
  });

  it("loads into S3: each kind an object under its exact key, or reported as defined", async () => {
    const report = await load("s3://corpus/c", {});
    check(report, (k) => k.s3 ?? k.fs);
    for (const k of KINDS) {
      const want = k.s3 ?? k.fs;
      if (!("copied" in want)) continue;
      const isDir = ["hidden directory", "deep directories", "empty directory"].includes(k.name);
      const key = `c/${k.path}${isDir ? "/" : ""}`;
      const head = await aws.clients.s3.send(new HeadObjectCommand({ Bucket: "corpus", Key: key }));
      assert.ok(head.Metadata?.attr, `${k.name}: object ${JSON.stringify(key)} with attr`);
    }
  });
});
