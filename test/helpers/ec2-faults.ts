/**
 * What moto's EC2 cannot do: fail. A pass-through proxy on 127.0.0.1 in front of moto that answers chosen
 * calls with EC2's own errors (no capacity in a subnet, a refused launch, throttling) and forwards every other
 * request to moto, recording each call's action and parameters as the client sent them. The only stand-in
 * left for EC2. One change on the way: moto starts MinCount instances per RunInstances, where EC2 starts up to
 * MaxCount as capacity allows; with capacity there, the proxy asks moto for MaxCount.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Ec2Faults {
  readonly url: string;
  /** Every request, in order: its action and form parameters. */
  readonly calls: { action: string; params: URLSearchParams }[];
  /** The next call of `action` fails with this EC2 error code (400, or 503 for throttling). */
  failNext(action: string, code: string, message?: string): void;
  /** RunInstances in these subnets answers InsufficientInstanceCapacity. */
  readonly noCapacityIn: Set<string>;
  /** RunInstances for Spot in these subnets answers InsufficientInstanceCapacity (On-Demand goes through). */
  readonly noSpotCapacityIn: Set<string>;
  close(): Promise<void>;
}

export async function startEc2Faults(upstream: string): Promise<Ec2Faults> {
  const target = new URL(upstream);
  const failures = new Map<string, { code: string; message: string }>();
  const calls: Ec2Faults["calls"] = [];
  const noCapacityIn = new Set<string>();
  const noSpotCapacityIn = new Set<string>();

  const fault = (params: URLSearchParams): { status: number; code: string; message: string } | null => {
    const action = params.get("Action") ?? "";
    const failure = failures.get(action);
    if (failure) {
      failures.delete(action);
      return { status: failure.code === "RequestLimitExceeded" ? 503 : 400, ...failure };
    }
    const subnet = params.get("SubnetId");
    const spot = params.get("InstanceMarketOptions.MarketType") === "spot";
    if (
      action === "RunInstances" &&
      subnet &&
      (noCapacityIn.has(subnet) || (spot && noSpotCapacityIn.has(subnet)))
    ) {
      return {
        status: 400,
        code: "InsufficientInstanceCapacity",
        message: `We currently do not have sufficient capacity in ${subnet}.`,
      };
    }
    return null;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const params = new URLSearchParams(body.toString("utf8"));
      calls.push({ action: params.get("Action") ?? "", params });
      const f = fault(params);
      if (f) {
        res.writeHead(f.status, { "content-type": "text/xml;charset=UTF-8" });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${f.code}</Code><Message>${f.message}</Message></Error></Errors><RequestID>${randomBytes(8).toString("hex")}</RequestID></Response>`,
        );
        return;
      }
      let forward = body;
      if (params.get("Action") === "RunInstances" && params.has("MaxCount")) {
        const asked = new URLSearchParams(params);
        asked.set("MinCount", asked.get("MaxCount") ?? "1");
        forward = Buffer.from(asked.toString());
      }
      const up = http.request(
        {
          hostname: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          // The signature covers the host header: moto checks none while IAM is off.
          headers: { ...req.headers, host: target.host, "content-length": String(forward.length) },
        },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on("error", (err) => {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`moto did not answer: ${err.message}`);
      });
      up.end(forward);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    failNext: (action, code, message = `${code} (injected)`) => failures.set(action, { code, message }),
    noCapacityIn,
    noSpotCapacityIn,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
