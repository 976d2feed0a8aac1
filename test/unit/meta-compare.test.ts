/** The one rule for "the target holds the source's entry": size, mode, owner and mtime, per target's rules. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  attrProblems,
  type MetaRules,
  metaProblems,
  type SourceMeta,
  sameMeta,
  sizeProblem,
  type TargetMeta,
} from "../../worker/targets/meta-compare.ts";
import { timeProblem } from "../../worker/targets/times.ts";

const S = 1_000_000_000n;
const source: SourceMeta = {
  mode: 0o100644n,
  uid: 1000n,
  gid: 100n,
  size: 42n,
  mtimeNs: 1700000000n * S + 5n,
};
const same: TargetMeta<bigint> = { ...source, mtime: source.mtimeNs };

/** A directory target's rules: permission bits, owner when kept, the exact time (within nothing). */
const directory = (owner: boolean): MetaRules<bigint> => ({
  at: "in the target",
  mode: "permissions",
  owner,
  mtime: (dst, src) => {
    const t = timeProblem(dst, src, { exact: src, slackNs: 0n });
    return t && `mtime in the target: ${t}`;
  },
});
/** An object's rules: the whole st_mode, the owner always, the size in the bucket, the time to the second. */
const object: MetaRules<bigint> = {
  at: "in attr",
  sizeAt: "in the bucket",
  mode: "st_mode",
  owner: true,
  mtime: (dst, src) => (dst / S === src / S ? null : `second ${dst / S}, expected ${src / S}`),
};

describe("meta-compare: one rule for unchanged and for VALIDATE", () => {
  const rows: {
    name: string;
    target: TargetMeta<bigint>;
    symlink?: boolean;
    rules: MetaRules<bigint>;
    want: string[];
  }[] = [
    { name: "the same entry", target: same, rules: directory(true), want: [] },
    {
      name: "another size",
      target: { ...same, size: 41n },
      rules: directory(true),
      want: ["size 41 in the target, 42 in the source"],
    },
    {
      name: "another size, in the bucket",
      target: { ...same, size: 41 },
      rules: object,
      want: ["size 41 in the bucket, 42 in the source"],
    },
    {
      name: "other permission bits",
      target: { ...same, mode: 0o100600n },
      rules: directory(true),
      want: ["mode 0600 in the target, 0644 in the source"],
    },
    {
      name: "other permission bits on a symlink, which nothing keeps",
      target: { ...same, mode: 0o120777n },
      symlink: true,
      rules: directory(true),
      want: [],
    },
    {
      name: "another type in st_mode",
      target: { ...same, mode: 0o120644n },
      rules: object,
      want: ["st_mode 120644 in attr, 100644 in the source"],
    },
    {
      name: "another owner, kept",
      target: { ...same, uid: 0n },
      rules: directory(true),
      want: ["owner 0:100 in the target, 1000:100 in the source"],
    },
    { name: "another owner, not kept", target: { ...same, gid: 0n }, rules: directory(false), want: [] },
    {
      name: "a nanosecond later, where times are exact",
      target: { ...same, mtime: source.mtimeNs + 1n },
      rules: directory(true),
      want: [
        `mtime in the target: ${timeProblem(source.mtimeNs + 1n, source.mtimeNs, { exact: source.mtimeNs, slackNs: 0n })}`,
      ],
    },
    {
      name: "a nanosecond later, where the second is promised",
      target: { ...same, mtime: source.mtimeNs + 1n },
      rules: object,
      want: [],
    },
    {
      name: "everything else, in the order size, mode, owner, mtime",
      target: { mode: 0o100755n, uid: 0n, gid: 0n, size: 1n, mtime: source.mtimeNs + 2n * S },
      rules: object,
      want: [
        "size 1 in the bucket, 42 in the source",
        "st_mode 100755 in attr, 100644 in the source",
        "owner 0:0 in attr, 1000:100 in the source",
        "second 1700000002, expected 1700000000",
      ],
    },
  ];
  for (const r of rows) {
    it(`finds ${r.want.length === 0 ? "no difference" : "each difference"} for ${r.name}`, () => {
      const symlink = r.symlink ?? false;
      assert.deepEqual(metaProblems(r.target, source, symlink, r.rules), r.want);
      assert.equal(sameMeta(r.target, source, symlink, r.rules), r.want.length === 0);
    });
  }

  it("leaves sizes out of the attributes, for entries whose size is checked otherwise", () => {
    assert.deepEqual(attrProblems({ ...same, size: 1n }, source, false, directory(true)), []);
  });

  it("names the TOC when the size is taken from it", () => {
    assert.equal(sizeProblem(3, 4n, "in the target", "TOC"), "size 3 in the target, 4 in the TOC");
    assert.equal(sizeProblem(4, 4n, "in the target", "TOC"), null);
  });
});
