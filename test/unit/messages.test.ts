import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeMessage,
  encodeMessage,
  entryFromWire,
  MAX_MESSAGE_BYTES,
  type TocEntry,
} from "../../core/messages.ts";

const entry: TocEntry = {
  path: 'dir/naïve 日本 🚀\nnew\tline\\"q"',
  kind: "file",
  size: 12,
  mtimeNs: "1600000000123456789",
};

describe("message codec", () => {
  it("round-trips a TOC batch, names of any characters included, as ASCII only", () => {
    const body = encodeMessage("r1", {
      type: "TOC_BATCH",
      phase: "WRITE",
      stage: "content",
      batch: 7,
      entries: [[entry.path, "f", entry.size, entry.mtimeNs]],
    });
    assert.match(body, /^[\x20-\x7e]*$/, "no byte outside printable ASCII");
    const d = decodeMessage(body, { expectRun: "r1", accept: ["TOC_BATCH"] });
    assert.ok(d.ok && d.message.type === "TOC_BATCH");
    const [wire] = d.message.entries;
    assert.ok(wire);
    assert.deepEqual(entryFromWire(wire), entry);
  });

  it("carries a worker's goodbye with its reason, and refuses a reason it does not know", () => {
    const goodbye = {
      type: "WORKER_STATE",
      worker: "w1",
      state: "STOPPED",
      host: "h",
      pid: 1,
      concurrency: 2,
      controlQueueUrl: "http://q/w1",
      subscriptionArn: "arn:sub:w1",
    } as const;
    const withReason = encodeMessage("r1", { ...goodbye, reason: "spot interruption", detail: "drained" });
    const d = decodeMessage(withReason, { accept: ["WORKER_STATE"] });
    assert.ok(d.ok && d.message.type === "WORKER_STATE");
    assert.equal(d.message.reason, "spot interruption");
    assert.equal(d.message.detail, "drained");
    const old = decodeMessage(encodeMessage("r1", goodbye), { accept: ["WORKER_STATE"] });
    assert.ok(old.ok && old.message.type === "WORKER_STATE" && old.message.reason === undefined);
    const odd = JSON.stringify({ v: 1, run: "r1", ...goodbye, reason: "bored" });
    const refused = decodeMessage(odd, { accept: ["WORKER_STATE"] });
    assert.ok(!refused.ok);
    assert.match(refused.error.message, /reason/);
  });

  it("refuses malformed JSON, naming it as such", () => {
    const d = decodeMessage("{not json", { accept: ["MODE"] });
    assert.ok(!d.ok);
    assert.equal(d.error.kind, "malformed-json");
  });

  it("refuses valid JSON of the wrong shape and says which field", () => {
    const d = decodeMessage(JSON.stringify({ v: 1, run: "r1", type: "MODE", phase: "DANCING", known: [] }), {
      accept: ["MODE"],
    });
    assert.ok(!d.ok);
    assert.equal(d.error.kind, "wrong-shape");
    assert.match(d.error.message, /phase/);
  });

  it("refuses a message of another run", () => {
    const body = encodeMessage("other", { type: "SHUTDOWN", reason: "x" });
    const d = decodeMessage(body, { expectRun: "r1", accept: ["SHUTDOWN"] });
    assert.ok(!d.ok);
    assert.equal(d.error.kind, "foreign-run");
  });

  it("refuses a type the receiver does not take (a forged control message on the TOC queue)", () => {
    const body = encodeMessage("r1", { type: "SHUTDOWN", reason: "x" });
    const d = decodeMessage(body, { expectRun: "r1", accept: ["TOC_BATCH"] });
    assert.ok(!d.ok);
    assert.equal(d.error.kind, "unexpected-type");
  });

  it("refuses an empty TOC batch and a negative size", () => {
    const empty = JSON.stringify({
      v: 1,
      run: "r1",
      type: "TOC_BATCH",
      phase: "WRITE",
      stage: "content",
      batch: 1,
      entries: [],
    });
    assert.equal(decodeMessage(empty, { accept: ["TOC_BATCH"] }).ok, false);
    const negative = JSON.stringify({
      v: 1,
      run: "r1",
      type: "TOC_BATCH",
      phase: "WRITE",
      stage: "content",
      batch: 1,
      entries: [["a", "f", -1, "0"]],
    });
    assert.equal(decodeMessage(negative, { accept: ["TOC_BATCH"] }).ok, false);
  });

  it("will not encode a message over the size limit", () => {
    assert.throws(
      () => encodeMessage("r1", { type: "SHUTDOWN", reason: "x".repeat(MAX_MESSAGE_BYTES) }),
      /SHUTDOWN message is \d+ bytes, over/,
    );
  });

  it("refuses an oversized body before parsing it", () => {
    const d = decodeMessage("x".repeat(MAX_MESSAGE_BYTES * 2 + 1), { accept: ["MODE"] });
    assert.ok(!d.ok);
    assert.equal(d.error.kind, "too-large");
  });
});
