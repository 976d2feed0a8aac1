/**
 * PutObject and HeadObject signed by hand, at the wire: a recording server on 127.0.0.1 receives the same
 * requests from the SDK and from S3Wire. Paths must be byte for byte the SDK's, and both requests' SigV4
 * signatures must verify under an independent implementation of the algorithm (the emulator does not check
 * signatures, S3 does). Then both ways of uploading against moto, which keeps a PUT's checksum only when the
 * request names its algorithm.
 */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { makeClients } from "../../core/aws/clients.ts";
import { S3ObjectStore } from "../../core/aws/s3-object-store.ts";
import { S3Wire } from "../../core/aws/s3-wire.ts";
import { crc32Base64 } from "../../core/checksum.ts";
import { isRetryable, isThrottle } from "../../core/retry.ts";
import { MOTO_KEYS, MOTO_REGION, type Moto, startMoto } from "../helpers/moto.ts";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Recomputes the request's SigV4 signature from what arrived (S3 rules: the path as sent, no double encoding). */
function signatureValid(r: Seen): boolean {
  const auth = String(r.headers.authorization ?? "");
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return false;
  const [, , date, region, service, signedHeaders, signature] = m as unknown as string[];
  const names = (signedHeaders as string).split(";");
  const canonicalHeaders = names
    .map(
      (n) =>
        `${n}:${String(r.headers[n] ?? "")
          .trim()
          .replace(/\s+/g, " ")}\n`,
    )
    .join("");
  const [pathOnly, query = ""] = r.path.split("?");
  const canonical = [
    r.method,
    pathOnly,
    query,
    canonicalHeaders,
    signedHeaders,
    r.headers["x-amz-content-sha256"],
  ].join("\n");
  const amzDate = String(r.headers["x-amz-date"]);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  let key: Buffer = createHmac("sha256", `AWS4${SECRET}`)
    .update(date as string)
    .digest();
  for (const part of [region, service, "aws4_request"])
    key = createHmac("sha256", key)
      .update(part as string)
      .digest();
  return createHmac("sha256", key).update(toSign).digest("hex") === signature;
}

describe("S3 requests signed by hand, at the wire", { timeout: 30_000 }, () => {
  let server: http.Server;
  let seen: Seen[] = [];
  let answer: (r: Seen, res: http.ServerResponse) => void = (_r, res) => res.end();
  let client: S3Client;
  let wire: S3Wire;
  const agent = new http.Agent({ keepAlive: true });

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r = {
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks),
        };
        seen.push(r);
        answer(r, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    client = new S3Client({
      region: "eu-west-3",
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: SECRET, sessionToken: "token/with+chars=" },
      requestChecksumCalculation: "WHEN_REQUIRED",
      requestHandler: { httpAgent: agent },
    });
    wire = new S3Wire(client, { maxSockets: 8, connectTimeoutMs: 5_000, idleTimeoutMs: 30_000 });
  });

  after(() => {
    wire.destroy();
    client.destroy();
    server.close();
  });

  const keys = [
    "plain.txt",
    "a b/c+d&e=f",
    "ünïcödé/名前.bin",
    "x!'()*~.-_",
    "%41%2F",
    "a//b",
    "dir/",
    "semi;colon,comma:@$",
  ];

  it("sends PUTs to the SDK's paths, with the body, checksum and metadata, and signatures that verify", async () => {
    const body = Buffer.from("hello wire");
    for (const key of keys) {
      seen = [];
      answer = (_r, res) => res.end();
      await client.send(
        new PutObjectCommand({
          Bucket: "bench-bucket",
          Key: key,
          Body: body,
          ContentType: "text/plain",
          Metadata: { attr: '{"uid":0}' },
          // As the object store sends it: our checksum, its algorithm named.
          ChecksumAlgorithm: "CRC32",
          ChecksumCRC32: "DUMMY==",
        }),
      );
      await wire.put("bench-bucket", key, {
        body,
        contentType: "text/plain",
        metadata: { attr: '{"uid":0}' },
        crc32: "DUMMY==",
      });
      const [sdk, ours] = seen as [Seen, Seen];
      assert.equal(ours.path, sdk.path.split("?")[0], key);
      assert.ok(signatureValid(sdk), `the verifier accepts the SDK's request (${key})`);
      assert.ok(signatureValid(ours), `our request's signature verifies (${key})`);
      assert.deepEqual(ours.body, body);
      for (const h of [
        "content-type",
        "x-amz-meta-attr",
        "x-amz-checksum-crc32",
        "x-amz-sdk-checksum-algorithm",
        "x-amz-security-token",
        "content-length",
      ])
        assert.equal(ours.headers[h], sdk.headers[h], `${h} (${key})`);
      assert.equal(ours.headers["x-amz-sdk-checksum-algorithm"], "CRC32", key);
    }
  });

  it("the verifier refuses a request changed after signing", async () => {
    seen = [];
    answer = (_r, res) => res.end();
    await wire.put("bench-bucket", "a b", { body: Buffer.from("x"), metadata: { attr: "1" } });
    const r = seen[0] as Seen;
    assert.ok(signatureValid(r));
    assert.equal(r.headers["x-amz-sdk-checksum-algorithm"], undefined, "no checksum, no algorithm");
    assert.equal(signatureValid({ ...r, path: r.path.replace("a%20b", "a%20c") }), false);
    assert.equal(signatureValid({ ...r, headers: { ...r.headers, "x-amz-meta-attr": "2" } }), false);
  });

  it("reads a HEAD as the SDK does, a 404 as nothing, and S3's errors with their codes", async () => {
    answer = (_r, res) => {
      res.writeHead(200, {
        "content-length": "1234",
        "content-type": "application/pdf",
        "x-amz-meta-attr": '{"mode":33188}',
        "x-amz-meta-s3bl-crc32": "AAAAAA==",
        "x-amz-checksum-crc32": "AAAAAA==",
        "x-amz-checksum-type": "FULL_OBJECT",
        etag: '"abc"',
      });
      res.end();
    };
    seen = [];
    const sdk = await client.send(
      new HeadObjectCommand({ Bucket: "bench-bucket", Key: "a b", ChecksumMode: "ENABLED" }),
    );
    const ours = await wire.head("bench-bucket", "a b");
    assert.ok(ours);
    assert.equal(ours.size, sdk.ContentLength);
    assert.equal(ours.contentType, sdk.ContentType);
    assert.deepEqual(ours.metadata, sdk.Metadata);
    assert.equal(ours.crc32, sdk.ChecksumCRC32);
    assert.equal(ours.checksumType, sdk.ChecksumType);
    assert.equal(ours.etag, sdk.ETag);
    assert.equal(seen[1]?.headers["x-amz-checksum-mode"], "ENABLED");
    assert.ok(signatureValid(seen[1] as Seen));

    answer = (_r, res) => {
      res.writeHead(404);
      res.end();
    };
    assert.equal(await wire.head("bench-bucket", "missing"), null);

    answer = (_r, res) => {
      res.writeHead(503, { "content-type": "application/xml" });
      res.end("<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
    };
    const slow = await wire
      .put("bench-bucket", "k", { body: Buffer.from("x"), metadata: {} })
      .catch((e: unknown) => e);
    assert.equal((slow as Error).name, "SlowDown");
    assert.ok(isThrottle(slow) && isRetryable(slow), "a SlowDown is a throttle, and retried");

    answer = (_r, res) => {
      res.writeHead(403, { "content-type": "application/xml" });
      res.end("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
    };
    const denied = await wire
      .put("bench-bucket", "k", { body: Buffer.from("x"), metadata: {} })
      .catch((e: unknown) => e);
    assert.equal((denied as Error).name, "AccessDenied");
    assert.equal(isRetryable(denied), false);
  });
});

describe("uploads with a checksum, against moto", { timeout: 60_000 }, () => {
  let moto: Moto;
  let clients: ReturnType<typeof makeClients>;
  const bucket = "wire-checksums";

  before(async () => {
    moto = await startMoto();
    clients = makeClients({ region: MOTO_REGION, endpoint: moto.url, maxSockets: 4, credentials: MOTO_KEYS });
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  after(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  it("keeps the CRC32 of a PUT signed by hand, of one sent by the SDK, and of a multipart upload", async () => {
    const body = Buffer.from("the same bytes, three ways");
    const crc32 = crc32Base64(body);
    const byHand = new S3ObjectStore(clients.s3, bucket, undefined, clients.s3Wire);
    const bySdk = new S3ObjectStore(clients.s3, bucket);
    assert.ok(await clients.s3Wire.supports(bucket), "the hand-signed path is taken");
    await byHand.put("by-hand", body, { contentType: "text/plain", metadata: { a: "1" }, crc32 });
    await bySdk.put("by-sdk", body, { contentType: "text/plain", metadata: { a: "1" }, crc32 });
    const part = Buffer.alloc(5 * 1024 * 1024 + 17, 7);
    const whole = Buffer.concat([part, part]);
    await bySdk.putMultipart(
      "in-parts",
      (async function* () {
        yield part;
        yield part;
      })(),
      () => crc32Base64(whole),
      { contentType: "application/octet-stream", metadata: {}, partSize: part.length, queueSize: 2 },
    );
    for (const [key, store] of [
      ["by-hand", byHand],
      ["by-sdk", bySdk],
    ] as const) {
      const h = await store.head(key);
      assert.equal(h?.crc32, crc32, key);
      assert.equal(h?.size, body.length, key);
    }
    assert.equal((await bySdk.head("in-parts"))?.crc32, crc32Base64(whole));
  });
});
