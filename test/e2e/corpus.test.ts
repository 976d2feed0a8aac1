/**
 * The bad-input corpus: one source tree with over fifty kinds of awkward entries, each with its defined
 * outcome (copied, or reported with a reason), loaded into a directory by an unprivileged user with each
 * copier and into S3. Among them, times before 1970 and past both 32-bit limits with sub-second parts from 0
 * to 999999999 ns: read back with `{ bigint: true }` stats, and from S3 as yas3fs reads `attr` (doubles, in
 * JavaScript and in Python), none may show another second.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import type { RunReport } from "../../master/report.ts";
import { exactSeconds, nextDouble, splitNs } from "../../worker/targets/times.ts";
import { startTestAws, type TestAws } from "../helpers/aws.ts";
import { startLocal, unprivileged } from "../helpers/run.ts";
import { diffTrees, listTree } from "../helpers/tree.ts";

type Outcome = { copied: true } | { failed: RegExp } | { skipped: RegExp };
interface Kind {
  readonly name: string;
  /** The entry's path relative to the source root, as the report names it. */
  readonly path: string;
  make(abs: string): Promise<void>;
  /** On a directory target (unprivileged), with the rsync copier, and on S3 (the defaults: as `fs`). */
  readonly fs: Outcome;
  readonly rsync?: Outcome;
  readonly s3?: Outcome;
  /** Atime and mtime, exact, set on the entry (after it is made, and again before each load). */
  readonly timeNs?: bigint;
}

const copied = { copied: true } as const;
const file =
  (content = "x\n") =>
  (abs: string) =>
    fs.writeFile(abs, content);
const long = "d".repeat(200);

/** Sets an entry's atime and mtime to the nanosecond (touch uses utimensat; -h: a symlink itself). */
const touch = (abs: string, ns: bigint) =>
  void execFileSync("touch", ["-h", "-d", `@${exactSeconds(ns)}`, abs]);

/** Times before 1970, around 2038 and 2106 (the 32-bit limits), each with an awkward sub-second part. */
const TIMES: [string, bigint][] = [
  ["1960-01-01", -315619200_000000000n],
  ["1960-01-01 plus .999999999", -315619199_000000001n],
  ["1969-12-31 23:59:59.999999999", -1n],
  ["1969-12-31 23:59:59.000000001", -999_999_999n],
  ["1970-01-01", 0n],
  ["2023 .999999999, 1 ns short of a second", 1700000000_999999999n],
  ["2023 .000000001", 1700000000_000000001n],
  ["2023 .999999 exactly", 1700000000_999999000n],
  ["2023 .0000005", 1700000000_000000500n],
  ["2038 limit .999999999", 2147483647_999999999n],
  ["after 2038 .5", 2147483648_500000000n],
  ["2106 limit .999999999", 4294967295_999999999n],
  ["after 2106 .000000001", 4294967296_000000001n],
  ["after 2106 .999999999", 4294967296_999999999n],
];
const timeKinds: Kind[] = [
  ...TIMES.map(([label, ns]) => ({
    name: `time ${label}`,
    path: `time ${label}`,
    make: (a: string) => fs.writeFile(a, `${label}\n`),
    fs: copied,
    timeNs: ns,
  })),
  {
    name: "directory with a time 1 ns short of a second",
    path: "time dir .999999999",
    make: (a) => fs.mkdir(a),
    fs: copied,
    timeNs: 1700000000_999999999n,
  },
  {
    name: "symlink with a time before 1970",
    path: "time link 1960",
    make: (a) => fs.symlink("a b.txt", a),
    fs: copied,
    timeNs: -315619199_000000001n,
  },
];
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
    rsync: { failed: /Permission denied \(13\)/ }, // rsync's own words
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
  ...timeKinds,
];

const isRoot = process.getuid?.() === 0;

/** The exact value of a double in nanoseconds (toFixed is exact to its digits), and the step to the next. */
const doubleNs = (d: number) => BigInt(d.toFixed(9).replace(".", ""));
const stepNs = (d: number) => doubleNs(nextDouble(d, true)) - doubleNs(d) + 1n;

describe(`the bad-input corpus (${KINDS.length} kinds)`, { timeout: 300_000 }, () => {
  let aws: TestAws;
  let tmp: string;
  let src: string;

  /** (Re)sets the times of the time rows: a copy reads a file, which moves its atime. */
  const setTimes = () => {
    for (const k of KINDS) if (k.timeNs !== undefined) touch(path.join(src, k.path), k.timeNs);
  };

  before(async () => {
    assert.ok(KINDS.length >= 50);
    aws = await startTestAws();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "s3bl-corpus-"));
    await fs.chmod(tmp, 0o777);
    src = path.join(tmp, "src");
    await fs.mkdir(src);
    for (const k of KINDS) {
      if (!isRoot && k.name === "character device") continue;
      await k.make(path.join(src, k.path));
    }
    setTimes();
    for (const k of KINDS) {
      if (k.timeNs === undefined) continue;
      const st = await fs.lstat(path.join(src, k.path), { bigint: true });
      assert.equal(st.mtimeNs, k.timeNs, `${k.name}: the source has the time to the nanosecond`);
    }
  });

  after(async () => {
    await aws?.close();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const load = async (target: string, as: { uid?: number; gid?: number }, args: string[] = []) => {
    setTimes();
    const run = startLocal({
      endpoint: aws.emulator.url,
      dir: tmp,
      name: `corpus-${path.basename(target).replace(/\W/g, "")}`,
      source: src,
      target,
      args: ["--workers", "2", ...args],
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

  /**
   * Every time row in a directory target, by `{ bigint: true }` lstat, before anything reads the target (which
   * would move atimes): the source's second always, and never later than the source's time. `mtimeNs`: how
   * far below it may be (0: exact); `atimeNs` likewise (of files), or `second` for whole seconds only.
   */
  const checkTimes = async (target: string, promise: { mtimeNs: bigint; atimeNs: bigint | "second" }) => {
    const seen: string[] = [];
    const wrong: string[] = [];
    for (const k of KINDS) {
      if (k.timeNs === undefined) continue;
      const st = await fs.lstat(path.join(target, k.path), { bigint: true });
      const want = k.timeNs;
      const wantSec = splitNs(want).sec;
      const times: [string, bigint, bigint | "second"][] = [["mtime", st.mtimeNs, promise.mtimeNs]];
      // A directory's atime is when it was last listed (the crawl lists it), a symlink's when it was last
      // read (VALIDATE reads it): only their mtimes are compared.
      if (st.isFile()) times.push(["atime", st.atimeNs, promise.atimeNs]);
      for (const [which, got, below] of times) {
        const line = `${k.path} ${which} ${exactSeconds(want)} -> ${exactSeconds(got)}`;
        seen.push(line);
        if (splitNs(got).sec !== wantSec) wrong.push(`${line}: another second`);
        else if (got > want) wrong.push(`${line}: later`);
        else if (below === "second" ? got !== wantSec * 1_000_000_000n : want - got > below)
          wrong.push(`${line}: ${below === "second" ? "not the whole second" : `over ${below} ns below`}`);
      }
    }
    assert.deepEqual(wrong, [], `times as set in the target:\n  ${seen.join("\n  ")}`);
    return seen;
  };

  it("loads into a directory as an unprivileged user: each kind copied or reported as defined", async () => {
    const target = path.join(tmp, "dst");
    const report = await load(target, unprivileged());
    check(report, (k) => k.fs);
    // Node's utimes sets microseconds (truncated): up to 999 ns below the source's time, never above.
    const seen = await checkTimes(target, { mtimeNs: 999n, atimeNs: 999n });
    console.log(`fs copier, times as set in the target:\n  ${seen.join("\n  ")}`);
    const notCopied = new Set(KINDS.filter((k) => !("copied" in k.fs)).map((k) => k.path));
    for (const p of await listTree(src)) if (p.startsWith("bad-")) notCopied.add(p);
    assert.deepEqual(await diffTrees(src, target, { owner: false, except: notCopied }), []);
  });

  it("loads into a directory with the rsync copier: each kind as defined, mtimes to the nanosecond", async () => {
    const target = path.join(tmp, "dst-rsync");
    const report = await load(target, unprivileged(), ["--copier", "rsync"]);
    check(report, (k) => k.rsync ?? k.fs);
    // rsync keeps mtimes exactly; its protocol carries atimes in whole seconds, and of files only.
    const seen = await checkTimes(target, { mtimeNs: 0n, atimeNs: "second" });
    console.log(`rsync copier, times as set in the target:\n  ${seen.join("\n  ")}`);
    const notCopied = new Set(KINDS.filter((k) => !("copied" in (k.rsync ?? k.fs))).map((k) => k.path));
    for (const p of await listTree(src)) if (p.startsWith("bad-")) notCopied.add(p);
    assert.deepEqual(await diffTrees(src, target, { owner: false, except: notCopied }), []);
  });

  it("loads into S3: each kind an object under its exact key, or reported as defined", async () => {
    const report = await load("s3://corpus/c", {});
    check(report, (k) => k.s3 ?? k.fs);
    const attrs: { k: Kind; attr: string }[] = [];
    for (const k of KINDS) {
      const want = k.s3 ?? k.fs;
      if (!("copied" in want)) continue;
      const isDir =
        ["hidden directory", "deep directories", "empty directory"].includes(k.name) ||
        k.path === "time dir .999999999";
      const key = `c/${k.path}${isDir ? "/" : ""}`;
      const head = await aws.clients.s3.send(new HeadObjectCommand({ Bucket: "corpus", Key: key }));
      assert.ok(head.Metadata?.attr, `${k.name}: object ${JSON.stringify(key)} with attr`);
      if (k.timeNs !== undefined) attrs.push({ k, attr: head.Metadata.attr });
    }
    // As yas3fs reads attr: JSON numbers are doubles. Each must floor to the source's second and be the
    // double nearest the source's time (within one step between doubles).
    const seen: string[] = [];
    for (const { k, attr } of attrs) {
      const a = JSON.parse(attr) as { st_mtime: number; st_atime: number };
      const want = k.timeNs as bigint;
      // A directory's atime is when it was last listed: the crawl lists it.
      const times: [string, number][] = [["st_mtime", a.st_mtime]];
      if (k.path !== "time dir .999999999") times.push(["st_atime", a.st_atime]);
      for (const [which, d] of times) {
        const name = `${k.name}: ${which} ${d} for ${exactSeconds(want)}`;
        assert.equal(BigInt(Math.floor(d)), splitNs(want).sec, `${name}: the same second`);
        const off = doubleNs(d) - want;
        assert.ok((off < 0n ? -off : off) <= stepNs(d), `${name}: ${off} ns off, over a double's step`);
        seen.push(`${k.path} ${which} ${exactSeconds(want)} -> ${d}`);
      }
    }
    // And as Python (yas3fs's json.loads and math.floor) reads the same text.
    const floors = execFileSync(
      "python3",
      [
        "-c",
        "import json, math, sys\nfor a in sys.argv[1:]:\n    j = json.loads(a)\n    print(math.floor(j['st_mtime']), math.floor(j['st_atime']))",
        ...attrs.map((x) => x.attr),
      ],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n");
    assert.deepEqual(
      floors.map((line, i) => (attrs[i]?.k.path === "time dir .999999999" ? line.split(" ")[0] : line)),
      attrs.map(({ k }) => {
        const sec = splitNs(k.timeNs as bigint).sec;
        return k.path === "time dir .999999999" ? `${sec}` : `${sec} ${sec}`;
      }),
    );
    console.log(`S3, attr times as written:\n  ${seen.join("\n  ")}`);
  });
});
