/**
 * The hand-rolled SigV4 signer of the hand-sent S3 requests signs exactly as the SDK's own signer does: the
 * same headers and the same `authorization`, request by request (the emulators do not check signatures, so
 * this comparison is what proves them).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { S3Client } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { type SigV4Credentials, SigV4Signer } from "../../core/aws/sigv4.ts";

/** The hash the SDK's S3 client signs with (what the hand-sent requests used to be signed by). */
const sha256 = new S3Client({ region: "us-east-1" }).config.sha256;

const KEYS: SigV4Credentials = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const SESSION: SigV4Credentials = { ...KEYS, sessionToken: "FwoGZXIvYXdzEJr//////////wEaDKEXAMPLETOKEN==" };
const UNSIGNED = "UNSIGNED-PAYLOAD";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const CASES: {
  readonly name: string;
  readonly method: "PUT" | "HEAD";
  readonly host: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly creds: SigV4Credentials;
  readonly region: string;
  readonly at: string;
}[] = [
  {
    name: "a PUT of a small object with its checksum and metadata, path style on an emulator",
    method: "PUT",
    host: "127.0.0.1:4566",
    path: "/bucket/dir/file%20one.txt",
    headers: {
      "content-length": "4096",
      "content-type": "text/plain",
      "x-amz-content-sha256": UNSIGNED,
      "x-amz-checksum-crc32": "AAAAAA==",
      "x-amz-sdk-checksum-algorithm": "CRC32",
      "x-amz-meta-attr": '{"st_mode":33188,"st_uid":0,"st_gid":0,"st_mtime":1733000000.123}',
      "x-amz-meta-s3bl-crc32": "AAAAAA==",
    },
    creds: KEYS,
    region: "us-east-1",
    at: "2026-12-01T23:59:59.999Z",
  },
  {
    name: "a HEAD with checksum mode, virtual-host style, with a session token",
    method: "HEAD",
    host: "my-bucket.s3.eu-west-1.amazonaws.com",
    path: "/caf%C3%A9/%E6%97%A5%E6%9C%AC/%21%27%28%29%2A",
    headers: { "x-amz-checksum-mode": "ENABLED", "x-amz-content-sha256": EMPTY },
    creds: SESSION,
    region: "eu-west-1",
    at: "2027-01-02T03:04:05.000Z",
  },
  {
    name: "a PUT whose metadata values have white space to normalise",
    method: "PUT",
    host: "s3.us-west-2.amazonaws.com",
    path: "/b/k",
    headers: {
      "content-length": "0",
      "content-type": "application/x-directory",
      "x-amz-content-sha256": UNSIGNED,
      "x-amz-meta-note": "  two  spaces\tand a tab  ",
    },
    creds: SESSION,
    region: "us-west-2",
    at: "2026-02-28T12:00:00.000Z",
  },
  {
    name: "a PUT whose values have white space of other kinds, alone or at an end, and an empty value",
    method: "PUT",
    host: "s3.us-west-2.amazonaws.com",
    path: "/b/k2",
    headers: {
      "content-length": "0",
      "x-amz-content-sha256": UNSIGNED,
      "x-amz-meta-lead": " lead",
      "x-amz-meta-trail": "trail ",
      "x-amz-meta-nbsp": "no\u00a0break",
      "x-amz-meta-vtab": "vertical\u000btab",
      "x-amz-meta-empty": "",
      "x-amz-meta-plain": "one space each",
      "x-amz-meta-mixed": "nbsp\u00a0 then a space,\ta tab",
      "x-amz-meta-tabs": "\tlead and trail\t",
      "x-amz-meta-lines": "a\r\nb\nc",
    },
    creds: KEYS,
    region: "us-west-2",
    at: "2026-02-28T12:00:01.000Z",
  },
];

/** The SDK signer's headers for one case, at `at`. */
async function sdkHeaders(c: (typeof CASES)[number], at: Date): Promise<Record<string, string>> {
  const headers = { ...c.headers, host: c.host };
  const signed = await new SignatureV4({
    credentials: c.creds,
    region: c.region,
    service: "s3",
    sha256,
    uriEscapePath: false,
    applyChecksum: false,
  }).sign(
    { method: c.method, protocol: "https:", hostname: c.host, path: c.path, query: {}, headers },
    { signingDate: at },
  );
  return signed.headers;
}

describe("SigV4 signer of the hand-sent S3 requests", () => {
  for (const c of CASES) {
    it(`signs ${c.name} exactly as the SDK's signer does`, async () => {
      const at = new Date(c.at);
      const headers = { ...c.headers, host: c.host };
      const ours = new SigV4Signer(c.region, "s3").sign(
        { method: c.method, path: c.path, headers },
        c.creds,
        at,
      );
      assert.deepEqual(ours, await sdkHeaders(c, at));
      assert.match(ours.authorization ?? "", /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\//);
    });
  }

  it("signs a run of different requests with one signer, each as the SDK's signer does", async () => {
    // What the signer remembers between requests (the date of the second, the signed-header list) must never
    // carry over to a request of other headers, another second or another millisecond of the same second.
    const signers = new Map<string, SigV4Signer>();
    const times = ["2026-12-01T23:59:59.001Z", "2026-12-01T23:59:59.999Z", "2026-12-02T00:00:00.000Z"];
    for (let i = 0; i < 12; i++) {
      const c = CASES[i % CASES.length] as (typeof CASES)[number];
      const at = new Date(times[Math.floor(i / 2) % times.length] as string);
      let signer = signers.get(c.region);
      if (!signer) {
        signer = new SigV4Signer(c.region, "s3");
        signers.set(c.region, signer);
      }
      const headers: Record<string, string> = { ...c.headers, host: c.host };
      // Every other request signed into its own headers object, as the hand-sent requests are.
      const ours =
        i % 2 === 0
          ? signer.sign({ method: c.method, path: c.path, headers }, c.creds, at)
          : signer.signHeaders(c.method, c.path, headers, c.creds, at);
      assert.deepEqual(ours, await sdkHeaders(c, at), `request ${i}: ${c.name} at ${at.toISOString()}`);
      if (i % 2 === 1) assert.equal(ours, headers, "signed in place");
      else assert.equal(headers.authorization, undefined, "the request's headers are left as they were");
    }
  });

  it("derives a new signing key when the day or the keys change", () => {
    const signer = new SigV4Signer("us-east-1", "s3");
    const req = { method: "HEAD", path: "/b/k", headers: { host: "h", "x-amz-content-sha256": EMPTY } };
    const day1 = signer.sign(req, KEYS, new Date("2026-12-01T23:59:59Z")).authorization;
    const day2 = signer.sign(req, KEYS, new Date("2026-12-02T00:00:00Z")).authorization;
    const other = signer.sign(req, { ...KEYS, secretAccessKey: "other" }, new Date("2026-12-02T00:00:00Z"));
    const again = signer.sign(req, KEYS, new Date("2026-12-02T00:00:00Z")).authorization;
    assert.notEqual(day1, day2);
    assert.notEqual(other.authorization, day2);
    assert.equal(again, day2);
  });
});
