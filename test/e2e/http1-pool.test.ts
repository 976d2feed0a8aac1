/**
 * The lean HTTP/1.1 client of the hand-sent S3 requests, against real servers on 127.0.0.1: Node's own HTTP
 * server, and a raw TCP server that answers byte by byte as a test scripts it (chunked bodies in pieces,
 * interim answers, connections closed under the client, silence).
 */
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Http1Pool, type Http1PoolOptions } from "../../core/aws/http1-pool.ts";
import { isRetryable } from "../../core/retry.ts";

interface Received {
  readonly head: string;
  readonly body: Buffer;
}

/** A TCP server that hands every request (head and Content-Length body) on a socket to `answer`. */
class RawServer {
  readonly server: net.Server;
  readonly sockets: net.Socket[] = [];
  readonly received: Received[] = [];
  closedByClient = 0;
  answer: (s: net.Socket, r: Received) => void = (s) =>
    s.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");

  constructor() {
    this.server = net.createServer((s) => {
      this.sockets.push(s);
      let buf = Buffer.alloc(0);
      s.on("end", () => {
        this.closedByClient++;
        s.end();
      });
      s.on("error", () => s.destroy());
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = buf.toString("latin1", 0, end);
          const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < end + 4 + len) return;
          const r = { head, body: buf.subarray(end + 4, end + 4 + len) };
          buf = buf.subarray(end + 4 + len);
          this.received.push(r);
          this.answer(s, r);
        }
      });
    });
  }

  async start(): Promise<URL> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return new URL(`http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`);
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A self-signed certificate for localhost and 127.0.0.1 (valid to 2126), and its key: the test server's. */
const CERT = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBmzCCAUGgAwIBAgIURmDvEJ+BKpBOk7m4sY94TlVi/oUwCgYIKoZIzj0EAwIw",
  "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMjAzMDAyNFoYDzIxMjYxMTA4",
  "MDMwMDI0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO",
  "PQMBBwNCAASWNAZ16g9kYwUImq29I788t75PX30wwCgmLX4zkzIzCSxPAIuPR0hH",
  "oHztFWClknAnS4A54HZx9S0vwF+ihN4ro28wbTAdBgNVHQ4EFgQUFEECLupOWA3i",
  "AQyG7QS/oxCVCtkwHwYDVR0jBBgwFoAUFEECLupOWA3iAQyG7QS/oxCVCtkwDwYD",
  "VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI",
  "zj0EAwIDSAAwRQIhAMy2NWWuRZ9qbDVMBRIQ0e8ouboXqH37JHIk/GXnWrvCAiAT",
  "AvK0EGjk1+fsPJGM8bjP/gDvzRALDMGH3M6e4Vm5+g==",
  "-----END CERTIFICATE-----",
].join("\n");
const KEY = [
  "-----BEGIN PRIVATE KEY-----",
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgj4DjOjQryaUw/419",
  "BDw2zvSfQnWddTKSCagxr6TT4bChRANCAASWNAZ16g9kYwUImq29I788t75PX30w",
  "wCgmLX4zkzIzCSxPAIuPR0hHoHztFWClknAnS4A54HZx9S0vwF+ihN4r",
  "-----END PRIVATE KEY-----",
].join("\n");

const OPTIONS: Http1PoolOptions = { maxSockets: 4, connectTimeoutMs: 2_000, idleTimeoutMs: 2_000 };
const put = (path: string, body: string, headers: Record<string, string> = {}) => ({
  method: "PUT",
  path,
  headers: { host: "h", "content-length": String(Buffer.byteLength(body)), ...headers },
  body: Buffer.from(body),
});
const get = (path: string) => ({ method: "GET", path, headers: { host: "h" } });

/** Writes `text` to the socket a few bytes at a time, each piece in a packet of its own. */
async function dribble(s: net.Socket, text: string, piece = 3): Promise<void> {
  for (let i = 0; i < text.length; i += piece) {
    s.write(text.slice(i, i + piece));
    await sleep(1);
  }
}

describe("the lean HTTP/1.1 client, against Node's HTTP server", { timeout: 30_000 }, () => {
  let server: http.Server;
  let url: URL;
  let connections = 0;
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        if (req.url === "/chunked") {
          res.setHeader("x-twice", ["one", "two"]);
          res.write("first part, ");
          res.end("second part");
          return;
        }
        res.writeHead(200, { "content-type": "text/plain", "x-amz-meta-attr": '{"mode":33188}' });
        res.end(req.method === "HEAD" ? undefined : `you sent ${chunks.length ? "a body" : "nothing"}`);
      });
    });
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  it("sends requests one after another on one kept-alive connection, and reads their answers whole", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      connections = 0;
      seen.length = 0;
      for (let i = 0; i < 5; i++) {
        const res = await pool.request(put(`/b/k${i}`, `body ${i}`, { "x-amz-meta-attr": `{"n":${i}}` }));
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), "you sent a body");
        assert.equal(res.headers["x-amz-meta-attr"], '{"mode":33188}');
        assert.equal(res.headers["content-type"], "text/plain");
      }
      const head = await pool.request({ method: "HEAD", path: "/b/k0", headers: { host: "h" } });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0, "a HEAD's answer has no body, whatever its content-length says");
      const chunked = await pool.request(get("/chunked"));
      assert.equal(chunked.body.toString(), "first part, second part");
      assert.equal(chunked.headers["x-twice"], "one, two");
      assert.equal(connections, 1, "every request went on the same connection");
      assert.deepEqual(
        seen.map((s) => [s.method, s.url, s.body, s.headers["x-amz-meta-attr"]]),
        [
          ...[0, 1, 2, 3, 4].map((i) => ["PUT", `/b/k${i}`, `body ${i}`, `{"n":${i}}`]),
          ["HEAD", "/b/k0", "", undefined],
          ["GET", "/chunked", "", undefined],
        ],
      );
    } finally {
      pool.destroy();
    }
  });

  it("opens no more than maxSockets connections, and the requests beyond wait for one", async () => {
    const pool = new Http1Pool(url, { ...OPTIONS, maxSockets: 2 });
    try {
      connections = 0;
      const all = await Promise.all(Array.from({ length: 9 }, (_, i) => pool.request(put(`/m/${i}`, "x"))));
      assert.deepEqual(
        all.map((r) => r.status),
        Array(9).fill(200),
      );
      assert.equal(connections, 2);
    } finally {
      pool.destroy();
    }
  });
});

describe("the lean HTTP/1.1 client, against a scripted TCP server", { timeout: 30_000 }, () => {
  let raw: RawServer;
  let url: URL;

  before(async () => {
    raw = new RawServer();
    url = await raw.start();
  });

  after(() => raw.stop());

  it("reads a chunked answer that arrives a few bytes at a time, after an interim 100, and keeps the connection", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      raw.answer = (s) =>
        void dribble(
          s,
          "HTTP/1.1 100 Continue\r\n\r\n" +
            "HTTP/1.1 503 Slow Down\r\nTransfer-Encoding: chunked\r\nX-Amz-Request-Id: R1\r\n\r\n" +
            "5\r\n<Erro\r\n1a;ext=1\r\nr><Code>SlowDown</Code></E\r\n6\r\nrror>\n\r\n0\r\nX-Trailer: t\r\n\r\n",
        );
      const before = raw.sockets.length;
      const res = await pool.request(put("/a", "x"));
      assert.equal(res.status, 503);
      assert.equal(res.headers["x-amz-request-id"], "R1", "names are read in lower case");
      assert.equal(res.body.toString(), "<Error><Code>SlowDown</Code></Error>\n");
      raw.answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      assert.equal((await pool.request(put("/b", "y"))).body.toString(), "ok");
      assert.equal(raw.sockets.length, before + 1, "both on one connection");
    } finally {
      pool.destroy();
    }
  });

  it("reads a body to the end of a connection that says close, and opens a new one for the next request", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      raw.answer = (s) => {
        s.write("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n<Error>bye</Error>");
        s.end();
      };
      const before = raw.sockets.length;
      const res = await pool.request(put("/c", "x"));
      assert.equal(res.status, 500);
      assert.equal(res.body.toString(), "<Error>bye</Error>");
      raw.answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      assert.equal((await pool.request(put("/d", "x"))).status, 200);
      assert.equal(raw.sockets.length, before + 2);
    } finally {
      pool.destroy();
    }
  });

  it("sends a request again on a new connection when the kept-alive one is closed by the server as it arrives", async () => {
    const pool = new Http1Pool(url, { ...OPTIONS, keepAliveMs: 60_000 });
    try {
      raw.answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      await pool.request(put("/e", "x"));
      const kept = raw.sockets.at(-1) as net.Socket;
      raw.received.length = 0;
      // The server closes the unused connection just as the next request arrives on it, without a word.
      raw.answer = (s) =>
        s === kept ? s.destroy() : s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      const res = await pool.request(put("/f", "again"));
      assert.equal(res.status, 200);
      assert.deepEqual(
        raw.received.map((r) => r.body.toString()),
        ["again", "again"],
        "sent on the closed connection, then on a new one",
      );
      assert.notEqual(raw.sockets.at(-1), kept);
    } finally {
      pool.destroy();
    }
  });

  it("fails a request whose connection closes in the middle of the answer, as a retryable reset", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      raw.answer = (s) => {
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        setTimeout(() => s.destroy(), 20);
      };
      const err = (await pool.request(put("/h", "x")).catch((e: unknown) => e)) as Error & { code?: string };
      assert.equal(err.code, "ECONNRESET");
      assert.match(err.message, /PUT http:\/\/127\.0\.0\.1:\d+\/h: the connection closed before the answer/);
      assert.ok(isRetryable(err));
    } finally {
      pool.destroy();
    }
  });

  it("uses no connection unused for longer than the keep-alive time or the server's hint, and closes it", async () => {
    const pool = new Http1Pool(url, { ...OPTIONS, keepAliveMs: 60_000, idleTimeoutMs: 300 });
    try {
      raw.answer = (s) =>
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=1, max=100\r\n\r\n");
      const closed = raw.closedByClient;
      await pool.request(put("/g", "x"));
      const first = raw.sockets.at(-1);
      await sleep(20);
      // A hint of 1 s leaves the client no time: the next request goes on a new connection, the old is closed.
      raw.answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      await pool.request(put("/g2", "x"));
      assert.notEqual(raw.sockets.at(-1), first);
      for (let i = 0; i < 100 && raw.closedByClient === closed; i++) await sleep(10);
      assert.equal(raw.closedByClient, closed + 1, "the client closed the old connection");
      // Without a hint the connection is kept, and closed once unused for the idle timeout.
      for (let i = 0; i < 100 && raw.closedByClient === closed + 1; i++) await sleep(10);
      assert.equal(raw.closedByClient, closed + 2, "the client closed the connection left unused");
    } finally {
      pool.destroy();
    }
  });

  it("fails a request whose server stays silent, as a retryable timeout naming the request", async () => {
    const pool = new Http1Pool(url, { ...OPTIONS, idleTimeoutMs: 200 });
    try {
      raw.answer = () => {};
      const err = (await pool.request(put("/silent", "x")).catch((e: unknown) => e)) as Error & {
        code?: string;
      };
      assert.equal(err.name, "TimeoutError");
      assert.equal(err.code, "ETIMEDOUT");
      assert.match(err.message, /PUT http:\/\/127\.0\.0\.1:\d+\/silent: no answer for 200 ms/);
      assert.ok(isRetryable(err));
    } finally {
      pool.destroy();
    }
  });

  it("ends a request when its signal aborts, and refuses one whose signal has aborted, neither retried", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      raw.answer = () => {};
      const ac = new AbortController();
      const pending = pool.request(put("/abort", "x"), ac.signal).catch((e: unknown) => e);
      await sleep(50);
      ac.abort(new Error("shutting down"));
      const err = (await pending) as Error;
      assert.equal(err.name, "AbortError");
      assert.equal((err.cause as Error).message, "shutting down");
      assert.equal(isRetryable(err), false);
      const sent = raw.received.length;
      const again = (await pool.request(put("/abort2", "x"), ac.signal).catch((e: unknown) => e)) as Error;
      assert.equal(again.name, "AbortError");
      await sleep(20);
      assert.equal(raw.received.length, sent, "nothing was sent");
    } finally {
      pool.destroy();
    }
  });

  it("refuses a header value a header cannot carry, naming the header, and sends nothing", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      const sent = raw.received.length;
      const err = (await pool
        .request(put("/x", "x", { "x-amz-meta-note": "two\r\nx-injected: yes" }))
        .catch((e: unknown) => e)) as Error;
      assert.match(err.message, /x-amz-meta-note/);
      assert.equal(isRetryable(err), false);
      assert.equal(raw.received.length, sent);
    } finally {
      pool.destroy();
    }
  });

  it("fails an answer that is no HTTP, and a refused connection, with codes the retry policy reads", async () => {
    const pool = new Http1Pool(url, OPTIONS);
    try {
      raw.answer = (s) => s.write("SSH-2.0-OpenSSH_9.6\r\n\r\n");
      const bad = (await pool.request(put("/y", "x")).catch((e: unknown) => e)) as Error & { code?: string };
      assert.equal(bad.code, "EPROTO");
      assert.match(bad.message, /PUT http:\/\/127\.0\.0\.1:\d+\/y: the server sent a status line "SSH-2\.0/);
    } finally {
      pool.destroy();
    }
    const closed = new net.Server();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const nowhere = new Http1Pool(new URL(`http://127.0.0.1:${port}`), OPTIONS);
    try {
      const err = (await nowhere.request(put("/z", "x")).catch((e: unknown) => e)) as Error & {
        code?: string;
      };
      assert.equal(err.code, "ECONNREFUSED");
      assert.ok(isRetryable(err));
    } finally {
      nowhere.destroy();
    }
  });
});

describe("the lean HTTP/1.1 client, over TLS", { timeout: 30_000 }, () => {
  let server: https.Server;
  let port = 0;
  let connections = 0;

  before(async () => {
    server = https.createServer({ key: KEY, cert: CERT }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`));
    });
    server.on("secureConnection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as net.AddressInfo).port;
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  it("sends requests on one kept-alive TLS connection, by name and by address, to a certificate it trusts", async () => {
    for (const host of ["localhost", "127.0.0.1"]) {
      const pool = new Http1Pool(new URL(`https://${host}:${port}`), { ...OPTIONS, ca: CERT });
      try {
        connections = 0;
        for (let i = 0; i < 3; i++) {
          const res = await pool.request(put(`/t/${i}`, `secret ${i}`));
          assert.equal(res.body.toString(), `PUT /t/${i} secret ${i}`, host);
        }
        assert.equal(connections, 1, host);
      } finally {
        pool.destroy();
      }
    }
  });

  it("refuses a certificate it does not trust, and does not retry that", async () => {
    const pool = new Http1Pool(new URL(`https://localhost:${port}`), OPTIONS);
    try {
      const err = (await pool.request(put("/t", "x")).catch((e: unknown) => e)) as Error & { code?: string };
      assert.equal(err.code, "DEPTH_ZERO_SELF_SIGNED_CERT");
      assert.match(err.message, /PUT https:\/\/localhost:\d+\/t: self-signed certificate/);
      assert.equal(isRetryable(err), false);
    } finally {
      pool.destroy();
    }
  });
});
