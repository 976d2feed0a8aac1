/** The hand-over of a local run's worker settings on standard input (local/worker-launch.ts). */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { decodeLaunch, readLaunch, sendLaunch } from "../../local/worker-launch.ts";

const LAUNCH = { args: ["--source", "/src dir", "--target", "s3://b/p"], env: { AWS_REGION: "us-east-1" } };

describe("worker launch on standard input", () => {
  it("reads the line a local run sends, in pieces, and leaves what follows it on the stream", async () => {
    const input = new PassThrough();
    const read = readLaunch(input, 5_000);
    const line = `${JSON.stringify(LAUNCH)}\n`;
    input.write(line.slice(0, 10));
    input.write(`${line.slice(10)}after`);
    assert.deepEqual(await read, LAUNCH);
    const rest: string[] = [];
    // Paused after the line: the worker resumes it when it listens for its parent's end.
    assert.equal(input.readableFlowing, false);
    input.on("data", (c: Buffer) => rest.push(c.toString()));
    input.resume();
    input.end();
    await new Promise((r) => input.once("end", r));
    assert.equal(rest.join(""), "after");
  });

  it("round-trips what sendLaunch writes", async () => {
    const pipe = new PassThrough();
    const read = readLaunch(pipe, 5_000);
    sendLaunch(pipe, LAUNCH);
    assert.deepEqual(await read, LAUNCH);
  });

  it("fails, saying the parent is gone, when the input ends before the line", async () => {
    const input = new PassThrough();
    const read = readLaunch(input, 5_000);
    input.end('{"args":');
    await assert.rejects(read, /standard input closed before the worker's settings came/);
  });

  it("fails within its bound when no line comes", async () => {
    await assert.rejects(
      readLaunch(new PassThrough(), 50),
      /no worker settings on standard input within 0.05 s/,
    );
  });

  for (const [what, line, error] of [
    ["a line that is not JSON", "args=1", /is not JSON/],
    ["arguments that are not strings", '{"args":[1],"env":{}}', /needs \{args: string\[\], env/],
    [
      "an environment value that is not a string",
      '{"args":[],"env":{"A":1}}',
      /needs \{args: string\[\], env/,
    ],
    ["no environment at all", '{"args":[]}', /needs \{args: string\[\], env/],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(() => decodeLaunch(line), error);
    });
  }
});
