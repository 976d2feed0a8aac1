/**
 * A stand-in for EC2's instance metadata service (IMDSv2) on 127.0.0.1, with only what a Spot worker asks of
 * it: no emulator of IMDS exists, so this is the one stand-in of the suite that is not an emulator. `PUT
 * /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1-21600) gives a token; `GET
 * /latest/meta-data/spot/instance-action` with a valid `X-aws-ec2-metadata-token` answers 404 until the test
 * gives the notice, then EC2's JSON. A GET without a valid token answers 401, as IMDSv2 does.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Imds {
  readonly url: string;
  /** Requests by `METHOD path status`, in order. */
  readonly requests: string[];
  /** From now on the instance-action answers this notice. */
  notice(action: "terminate" | "stop" | "hibernate", time: Date): void;
  /** Every token given so far stops being valid (a GET with one answers 401). */
  expireTokens(): void;
  close(): Promise<void>;
}

export async function startImds(): Promise<Imds> {
  const tokens = new Set<string>();
  const requests: string[] = [];
  let body: string | null = null;
  const server = http.createServer((req, res) => {
    const answer = (status: number, text = "") => {
      requests.push(`${req.method} ${req.url} ${status}`);
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(text);
    };
    req.resume();
    req.on("end", () => {
      if (req.method === "PUT" && req.url === "/latest/api/token") {
        const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return answer(400);
        const token = randomBytes(24).toString("base64url");
        tokens.add(token);
        return answer(200, token);
      }
      if (req.method === "GET" && req.url === "/latest/meta-data/spot/instance-action") {
        const token = req.headers["x-aws-ec2-metadata-token"];
        if (typeof token !== "string" || !tokens.has(token)) return answer(401);
        return body === null ? answer(404, "Not Found") : answer(200, body);
      }
      answer(404, "Not Found");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    notice(action, time) {
      body = JSON.stringify({ action, time: time.toISOString().replace(/\.\d{3}Z$/, "Z") });
    },
    expireTokens: () => tokens.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
