/**
 * The instance metadata adapter over real HTTP, against the IMDSv2 stand-in on 127.0.0.1 (test/helpers/imds.ts):
 * the token first, 404 while there is no notice, EC2's JSON once there is, a new token when the old one is
 * refused, and an error that names the endpoint when nothing answers.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ImdsSpotNotices, parseNotice } from "../../core/aws/instance-metadata.ts";
import { type Imds, startImds } from "../helpers/imds.ts";

describe("the instance metadata adapter (IMDSv2)", () => {
  let imds: Imds;
  before(async () => {
    imds = await startImds();
  });
  after(() => imds?.close());

  it("asks with a session token, hears no notice (404), then hears EC2's notice with its time", async () => {
    const notices = new ImdsSpotNotices(imds.url);
    const signal = AbortSignal.timeout(10_000);
    assert.equal(await notices.check(signal), null);
    assert.equal(await notices.check(signal), null);
    imds.notice("terminate", new Date("2030-01-02T03:04:05Z"));
    assert.deepEqual(await notices.check(signal), {
      action: "terminate",
      takenAtMs: Date.parse("2030-01-02T03:04:05Z"),
    });
    assert.deepEqual(imds.requests, [
      "PUT /latest/api/token 200",
      "GET /latest/meta-data/spot/instance-action 404",
      "GET /latest/meta-data/spot/instance-action 404",
      "GET /latest/meta-data/spot/instance-action 200",
    ]);
  });

  it("takes a new token when the service refuses the old one (401), and asks once more", async () => {
    const notices = new ImdsSpotNotices(imds.url);
    const signal = AbortSignal.timeout(10_000);
    await notices.check(signal);
    imds.requests.length = 0;
    imds.expireTokens();
    assert.equal((await notices.check(signal))?.action, "terminate");
    assert.deepEqual(imds.requests, [
      "GET /latest/meta-data/spot/instance-action 401",
      "PUT /latest/api/token 200",
      "GET /latest/meta-data/spot/instance-action 200",
    ]);
  });

  it("fails with the endpoint named when nothing answers there", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));
    const notices = new ImdsSpotNotices(`http://127.0.0.1:${port}`);
    await assert.rejects(
      notices.check(AbortSignal.timeout(10_000)),
      new RegExp(`instance metadata PUT /latest/api/token on http://127.0.0.1:${port} failed`),
    );
  });

  it("reads a notice without a usable time as one without a time, and refuses a body that is no notice", () => {
    assert.deepEqual(parseNotice('{"action":"stop","time":"soon"}'), { action: "stop", takenAtMs: null });
    assert.throws(() => parseNotice("<html>"), /not JSON/);
    assert.throws(() => parseNotice('{"time":"2030-01-01T00:00:00Z"}'), /names no action/);
  });
});
