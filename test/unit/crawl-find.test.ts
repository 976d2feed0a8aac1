/** The pure parts of the find crawler: its records, its times and its complaints. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nsOf, parseComplaint, RecordParser } from "../../toc/crawl-find.ts";

const record = (s: string | Buffer) =>
  Buffer.concat([Buffer.isBuffer(s) ? s : Buffer.from(s), Buffer.from([0])]);

describe("find crawler: records", () => {
  const stream = Buffer.concat([
    record("d 4096 1700000000.1234567890 2049 101 /src/a"),
    record("f 12345 1700000001.0000000010 2049 102 /src/a/file with spaces\nand a newline"),
    record("l 7 1700000002.5000000000 77 103 /src/a/link"),
    record("p 0 1700000003.0000000000 2049 104 /src/a/pipe"),
    record(Buffer.concat([Buffer.from("d 4096 1.0000000000 2049 105 /src/bad"), Buffer.from([0xff])])),
    record(
      Buffer.concat([
        Buffer.from("f 1 1.0000000000 2049 106 /src/bad"),
        Buffer.from([0xff]),
        Buffer.from("/inside"),
      ]),
    ),
    record("f 3 -5.2500000000 2049 107 /src/old"),
  ]);

  const parseIn = (pieces: Buffer[]) => {
    const p = new RecordParser("/src/", 2049n);
    const items = pieces.flatMap((b) => p.push(b));
    p.finish();
    return items;
  };

  it("reads every kind, keeps sizes, nanoseconds and identities, and covers a non-UTF-8 directory's contents", () => {
    const items = parseIn([stream]);
    assert.deepEqual(items, [
      {
        type: "entry",
        entry: { path: "a", kind: "dir", size: 0, mtimeNs: "1700000000123456789", ino: "101" },
      },
      {
        type: "entry",
        entry: {
          path: "a/file with spaces\nand a newline",
          kind: "file",
          size: 12345,
          mtimeNs: "1700000001000000001",
          ino: "102",
        },
      },
      // On another device than the root's (a filesystem mounted inside the source): the device goes too.
      {
        type: "entry",
        entry: {
          path: "a/link",
          kind: "symlink",
          size: 7,
          mtimeNs: "1700000002500000000",
          ino: "103",
          dev: "77",
        },
      },
      {
        type: "issue",
        issue: { path: "a/pipe", reason: "special file (fifo): not copied" },
        outcome: "skipped",
        isEntry: true,
      },
      {
        type: "issue",
        issue: {
          path: "bad\\xff",
          reason: "name is not valid UTF-8 and cannot become an S3 key; rename it to copy it",
        },
        outcome: "failed",
        isEntry: true,
      },
      { type: "entry", entry: { path: "old", kind: "file", size: 3, mtimeNs: "-4750000000", ino: "107" } },
    ]);
  });

  it("gives the same items however the stream is cut", () => {
    const whole = parseIn([stream]);
    for (const size of [1, 2, 3, 7, 64]) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) pieces.push(stream.subarray(i, i + size));
      assert.deepEqual(parseIn(pieces), whole, `pieces of ${size}`);
    }
  });

  it("refuses output that ends inside a record", () => {
    const p = new RecordParser("/src/", 2049n);
    p.push(Buffer.from("f 1 1.0 2049 108 /src/cut"));
    assert.throws(() => p.finish(), /ended inside a record/);
  });

  it("refuses a path outside the root", () => {
    const p = new RecordParser("/src/", 2049n);
    assert.throws(() => p.push(record("f 1 1.0 2049 109 /elsewhere/x")), /outside the root/);
  });
});

describe("find crawler: times", () => {
  it("turns %T@ into lstat's nanoseconds", () => {
    assert.equal(nsOf("1577836800.1234567890"), "1577836800123456789");
    assert.equal(nsOf("0.0000000000"), "0");
    assert.equal(nsOf("0.0000000420"), "42");
    assert.equal(nsOf("-2.5000000000"), "-1500000000");
    assert.equal(nsOf("12"), "12000000000");
  });
});

describe("find crawler: complaints", () => {
  it("unquotes the path find names", () => {
    assert.deepEqual(parseComplaint("find: '/src/locked dir': Permission denied"), {
      path: "/src/locked dir",
      message: "Permission denied",
    });
    assert.deepEqual(parseComplaint("find: '/src/we\\'ird\\nname': Permission denied"), {
      path: "/src/we'ird\nname",
      message: "Permission denied",
    });
    // Bytes outside ASCII come as octal escapes; the path is kept as bytes (one char per byte).
    assert.deepEqual(parseComplaint("find: '/src/verschlossen-\\303\\274': Permission denied"), {
      path: `/src/verschlossen-${Buffer.from("ü").toString("latin1")}`,
      message: "Permission denied",
    });
    assert.deepEqual(parseComplaint("find: '/src/a\\\\b': No such file or directory")?.path, "/src/a\\b");
  });

  it("returns null for a line it does not know", () => {
    assert.equal(parseComplaint("find: warning: something else"), null);
    assert.equal(parseComplaint("find: '/unterminated"), null);
  });
});
