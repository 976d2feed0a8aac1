/** A TOC entry's wire form: identities (inode, and device off the root's) travel compactly and exactly. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeMessage,
  encodeMessage,
  entryFromWire,
  entryToWire,
  type TocEntry,
  wireEntryBytes,
} from "../../core/messages.ts";

const entries: TocEntry[] = [
  { path: "a.txt", kind: "file", size: 3, mtimeNs: "1700000000999999999", ino: "1234" },
  // Inode numbers may pass 2^53 (XFS, btrfs, NFS): kept as decimal strings.
  { path: "big ino", kind: "file", size: 0, mtimeNs: "-1", ino: "18446744073709551615" },
  { path: "mnt/x", kind: "symlink", size: 5, mtimeNs: "0", ino: "7", dev: "66306" },
  { path: "caf\u00e9/\u{1f680}", kind: "dir", size: 0, mtimeNs: "-315619200000000000", ino: "99" },
  { path: "from a bucket", kind: "file", size: 9, mtimeNs: "1600000000000000000" },
];

describe("TOC entries on the wire", () => {
  it("carry the identity as one string, the device only when it is not the root's", () => {
    assert.deepEqual(entryToWire(entries[0] as TocEntry), ["a.txt", "f", 3, "1700000000999999999", "1234"]);
    assert.deepEqual(entryToWire(entries[2] as TocEntry), ["mnt/x", "l", 5, "0", "7:66306"]);
    assert.deepEqual(entryToWire(entries[4] as TocEntry), ["from a bucket", "f", 9, "1600000000000000000"]);
  });

  it("come back exactly through the codec, and wireEntryBytes counts each one's bytes exactly", () => {
    for (const e of entries) {
      assert.deepEqual(entryFromWire(entryToWire(e)), e);
      const one = encodeMessage("r", {
        type: "TOC_BATCH",
        phase: "WRITE",
        stage: "content",
        batch: 0,
        entries: [entryToWire(e)],
      });
      const two = encodeMessage("r", {
        type: "TOC_BATCH",
        phase: "WRITE",
        stage: "content",
        batch: 0,
        entries: [entryToWire(e), entryToWire(e)],
      });
      assert.equal(Buffer.byteLength(two) - Buffer.byteLength(one), wireEntryBytes(e), e.path);
      const d = decodeMessage(two, { accept: ["TOC_BATCH"] });
      assert.ok(d.ok && d.message.type === "TOC_BATCH");
      assert.deepEqual(d.message.entries.map(entryFromWire), [e, e]);
    }
  });

  it("refuses an identity that is not INO or INO:DEV", () => {
    for (const id of ["", "x", "1:", ":2", "1:2:3", "-1"]) {
      const body = JSON.stringify({
        v: 1,
        run: "r",
        type: "TOC_BATCH",
        phase: "WRITE",
        stage: "content",
        batch: 0,
        entries: [["a", "f", 1, "0", id]],
      });
      assert.equal(decodeMessage(body, { accept: ["TOC_BATCH"] }).ok, false, id);
    }
  });
});
