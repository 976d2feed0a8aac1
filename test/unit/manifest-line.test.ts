import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeMessage, encodeMessage } from "../../core/messages.ts";
import {
  decodeManifestLine,
  type EntryFacts,
  encodeManifestLine,
  type ManifestLine,
  outcomeOf,
} from "../../master/manifest-line.ts";
import { toResult } from "../../worker/batch-runner.ts";

const line: ManifestLine = {
  path: 'dir/naïve 日本 🚀\nnew\tline\\"q"',
  kind: "file",
  size: 12,
  mtimeNs: "-315619199000000001",
  checksum: "crc32:q83vEg==",
  outcome: "verified",
  reason: null,
};

describe("the manifest's line codec", () => {
  it("round-trips a line of any name as one line of JSON with its keys in a fixed order", () => {
    const text = encodeManifestLine(line);
    assert.equal(text.endsWith("\n"), true);
    assert.equal(text.split("\n").length, 2, "a newline in the name stays escaped");
    assert.deepEqual(Object.keys(JSON.parse(text)), [
      "path",
      "kind",
      "size",
      "mtimeNs",
      "checksum",
      "outcome",
      "reason",
    ]);
    assert.deepEqual(decodeManifestLine(text.trimEnd()), line);
  });

  it("round-trips an entry the crawl could not read, with no kind, size, time or checksum", () => {
    const unread: ManifestLine = {
      path: "bad-\\xff-name",
      kind: null,
      size: null,
      mtimeNs: null,
      checksum: null,
      outcome: "failed",
      reason: "the name is not valid UTF-8",
    };
    assert.deepEqual(decodeManifestLine(encodeManifestLine(unread).trimEnd()), unread);
  });

  const bad: [string, string, RegExp][] = [
    ["text that is not JSON", "{path", /not JSON/],
    ["an unknown outcome", JSON.stringify({ ...line, outcome: "ok" }), /outcome/],
    ["a time that is not an integer", JSON.stringify({ ...line, mtimeNs: "1.5" }), /mtimeNs/],
    ["a missing path", JSON.stringify({ ...line, path: undefined }), /path/],
  ];
  for (const [what, text, error] of bad) {
    it(`fails on ${what}, naming what is wrong`, () => {
      assert.throws(() => decodeManifestLine(text), error);
    });
  }
});

describe("an entry's outcome in the manifest", () => {
  const rows: [string, EntryFacts, string, RegExp | null][] = [
    ["written and checked", { written: true, mark: "w", checked: true }, "verified", null],
    ["found unchanged and checked", { written: true, mark: "u", checked: true }, "unchanged-verified", null],
    [
      "written by a worker that sends no letters, and checked",
      { written: true, checked: true },
      "verified",
      null,
    ],
    [
      "failed, with the report's reason",
      { issue: { outcome: "failed", reason: "EACCES" }, written: true, mark: "f", checked: false },
      "failed",
      /EACCES/,
    ],
    [
      "skipped, with the report's reason",
      { issue: { outcome: "skipped", reason: "special file (fifo)" }, written: false, checked: false },
      "skipped",
      /fifo/,
    ],
    [
      "failed in VALIDATE after it was written",
      {
        issue: { outcome: "failed", reason: "size 3 in the target" },
        written: true,
        mark: "w",
        checked: true,
      },
      "failed",
      /size 3/,
    ],
    ["never written (the run stopped)", { written: false, checked: false }, "not-verified", /not written/],
    [
      "written, never checked",
      { written: true, mark: "w", checked: false },
      "not-verified",
      /^written, not checked/,
    ],
    [
      "found unchanged, never checked",
      { written: true, mark: "u", checked: false },
      "not-verified",
      /^found unchanged, not checked/,
    ],
    [
      "said failed by its worker with no reason in the report",
      { written: true, mark: "f", checked: true },
      "failed",
      /without a reason/,
    ],
  ];
  for (const [what, facts, outcome, reason] of rows) {
    it(`is ${outcome} for an entry ${what}`, () => {
      const got = outcomeOf(facts);
      assert.equal(got.outcome, outcome);
      if (reason) assert.match(got.reason ?? "", reason);
      else assert.equal(got.reason, null);
    });
  }
});

describe("a WRITE result's per-entry letters and checksums", () => {
  it("carries one letter per entry in order and the checksums the target knew, through the codec", () => {
    const r = toResult(
      4,
      "WRITE",
      1,
      ["a", "b", "c", "d"],
      [
        { status: "ok", bytes: 3, checksum: "crc32:AAAAAA==" },
        { status: "unchanged", bytes: 0, checksum: "crc32:BBBBBB==" },
        { status: "failed", bytes: 0, reason: "EIO" },
        { status: "skipped", bytes: 0, reason: "special file" },
      ],
    );
    assert.equal(r.marks, "wufs");
    assert.deepEqual(r.checksums, ["crc32:AAAAAA==", "crc32:BBBBBB==", "", ""]);
    const body = encodeMessage("r1", {
      type: "SUMMARY",
      worker: "w1",
      kind: "CURRENT",
      phase: "WRITE",
      totals: {
        WRITE: { ok: 1, failed: 1, skipped: 1, unchanged: 1, bytes: 3 },
        VALIDATE: { ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0 },
      },
      batches: [r],
      inFlight: 0,
      rssBytes: 1,
      sqsRequests: 1,
      protocolErrors: 0,
    });
    const d = decodeMessage(body, { expectRun: "r1", accept: ["SUMMARY"] });
    assert.ok(d.ok && d.message.type === "SUMMARY");
    assert.equal(d.message.batches[0]?.marks, "wufs");
  });

  it("carries no letters in VALIDATE and no checksums when the target knew none", () => {
    const v = toResult(5, "VALIDATE", 1, ["a"], [{ status: "ok", bytes: 3 }]);
    assert.equal(v.marks, undefined);
    assert.equal(v.checksums, undefined);
    const w = toResult(6, "WRITE", 1, ["a"], [{ status: "ok", bytes: 3 }]);
    assert.equal(w.marks, "w");
    assert.equal(w.checksums, undefined);
  });

  it("refuses a result whose letters are not the four known ones", () => {
    const body = JSON.stringify({
      v: 1,
      run: "r1",
      type: "SUMMARY",
      worker: "w1",
      kind: "CURRENT",
      phase: "WRITE",
      totals: {
        WRITE: { ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0 },
        VALIDATE: { ok: 0, failed: 0, skipped: 0, unchanged: 0, bytes: 0 },
      },
      batches: [
        {
          ...toResult(1, "WRITE", 1, ["a"], [{ status: "ok", bytes: 0 }]),
          marks: "x",
        },
      ],
      inFlight: 0,
      rssBytes: 1,
      sqsRequests: 1,
      protocolErrors: 0,
    });
    const d = decodeMessage(body, { expectRun: "r1", accept: ["SUMMARY"] });
    assert.equal(d.ok, false);
  });
});
