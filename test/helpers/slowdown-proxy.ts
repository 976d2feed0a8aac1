/**
 * An HTTP proxy on 127.0.0.1 in front of the emulator that plays S3's per-prefix request rate: past `perSec`
 * object writes (PUT and POST on a key) per second to one prefix (the key's parent directory), it answers
 * 503 SlowDown with S3's XML error body instead of passing the request on. Everything else (SQS, SNS, reads,
 * bucket calls) goes through untouched. It counts every write that arrives, per prefix and per second, passed
 * or refused: the rate the clients actually sent at.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface PrefixSecond {
  /** Whole seconds since the proxy started. */
  readonly second: number;
  readonly arrived: number;
  readonly refused: number;
}

export interface SlowDownProxy {
  readonly url: string;
  /** Per prefix (`bucket/dir/`), the writes that arrived in each second, in order (seconds without any left out). */
  timeline(): Map<string, PrefixSecond[]>;
  close(): Promise<void>;
}

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>" +
  "<RequestId>SLOWDOWNPROXY</RequestId></Error>";

export async function startSlowDownProxy(targetUrl: string, perSec: number): Promise<SlowDownProxy> {
  const target = new URL(targetUrl);
  const started = Date.now();
  /** Per prefix: when each passed write of the last second passed (a sliding window), and per-second counts. */
  const passed = new Map<string, number[]>();
  const counts = new Map<string, Map<number, { arrived: number; refused: number }>>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  const admit = (prefix: string): boolean => {
    const now = Date.now();
    const second = Math.floor((now - started) / 1000);
    const perSecond = counts.get(prefix) ?? new Map<number, { arrived: number; refused: number }>();
    counts.set(prefix, perSecond);
    const c = perSecond.get(second) ?? { arrived: 0, refused: 0 };
    perSecond.set(second, c);
    c.arrived++;
    const window = (passed.get(prefix) ?? []).filter((t) => now - t < 1000);
    passed.set(prefix, window);
    if (window.length >= perSec) {
      c.refused++;
      return false;
    }
    window.push(now);
    return true;
  };

  const server = http.createServer((req, res) => {
    const prefix = writePrefix(req.method ?? "", req.url ?? "/");
    if (prefix !== null && !admit(prefix)) {
      // The body is read to its end first, so that the connection stays usable for the next request.
      req.resume();
      req.on("end", () => {
        res.writeHead(503, {
          "content-type": "application/xml",
          "content-length": Buffer.byteLength(SLOW_DOWN),
        });
        res.end(SLOW_DOWN);
      });
      return;
    }
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    timeline() {
      const out = new Map<string, PrefixSecond[]>();
      for (const [prefix, perSecond] of counts) {
        out.set(
          prefix,
          [...perSecond.entries()].sort((a, b) => a[0] - b[0]).map(([second, c]) => ({ second, ...c })),
        );
      }
      return out;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/**
 * The prefix (`bucket/dir/`) of an object write in path style (`PUT /bucket/dir/name`, `POST /bucket/dir/name?uploads`),
 * or null for anything else: SQS and SNS (`POST /`), bucket calls (`PUT /bucket`), reads.
 */
function writePrefix(method: string, url: string): string | null {
  if (method !== "PUT" && method !== "POST") return null;
  const path = decodeURIComponent(url.split("?")[0] ?? "");
  const slash = path.indexOf("/", 1);
  if (slash < 0 || slash === path.length - 1) return null;
  const key = path.slice(slash + 1).replace(/\/$/, "");
  return `${path.slice(1, slash)}/${key.slice(0, key.lastIndexOf("/") + 1)}`;
}
