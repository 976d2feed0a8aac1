import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkTocPath } from "../../core/toc-path.ts";

describe("TOC path rule", () => {
  const cases: [string, boolean, RegExp?][] = [
    ["a/b/c.txt", true],
    [".hidden/.also", true],
    ["with space/new\nline", true],
    ["/etc/passwd", false, /absolute/],
    ["../outside", false, /'\.\.'/],
    ["a/../../b", false, /'\.\.'/],
    ["a//b", false, /empty or '\.'/],
    ["./a", false, /empty or '\.'/],
    ["a/", false, /empty/],
    ["", false, /empty path/],
    ["a\0b", false, /NUL/],
  ];
  for (const [p, ok, reason] of cases) {
    it(`${ok ? "accepts" : "refuses"} ${JSON.stringify(p)}`, () => {
      const r = checkTocPath(p);
      assert.equal(r.ok, ok);
      if (!r.ok && reason) assert.match(r.reason, reason);
    });
  }
});
