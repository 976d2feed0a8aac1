/**
 * A small stand-in of the EC2 Query API on 127.0.0.1, enough for the fleet code driven by the real
 * `@aws-sdk/client-ec2`: RunInstances (launch template, subnet, tags, Spot options), DescribeInstances (instance
 * ids, `tag:K` and `instance-state-name` filters), TerminateInstances, CreateTags, and EC2's error format.
 * Instances go pending → running at their first describe, and shutting-down → terminated likewise. Hooks let a
 * test run a real worker process per instance and kill it on termination.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeInstance {
  readonly id: string;
  state: "pending" | "running" | "shutting-down" | "terminated";
  readonly tags: Map<string, string>;
  readonly launchTemplateId: string;
  readonly subnetId: string;
  readonly spot: boolean;
  readonly privateDnsName: string;
}

export interface FakeEc2 {
  readonly url: string;
  readonly instances: Map<string, FakeInstance>;
  /** Every request, in order: action and its form parameters. */
  readonly calls: { action: string; params: URLSearchParams }[];
  /** The next call of `action` fails with this EC2 error code (400, or 503 for throttling). */
  failNext(action: string, code: string, message?: string): void;
  /** RunInstances in these subnets answers InsufficientInstanceCapacity. */
  readonly noCapacityIn: Set<string>;
  /** Called for each new instance (e.g. to start a worker for it). */
  onLaunch: (i: FakeInstance) => void;
  /** Called when an instance is terminated (e.g. to kill its worker). */
  onTerminate: (i: FakeInstance) => void;
  close(): Promise<void>;
}

const STATE_CODES = { pending: 0, running: 16, "shutting-down": 32, terminated: 48 } as const;

export async function startFakeEc2(): Promise<FakeEc2> {
  const instances = new Map<string, FakeInstance>();
  const calls: { action: string; params: URLSearchParams }[] = [];
  const failures = new Map<string, { code: string; message: string }>();
  const fake: FakeEc2 = {
    url: "",
    instances,
    calls,
    failNext: (action, code, message = `${code} (injected)`) => failures.set(action, { code, message }),
    noCapacityIn: new Set(),
    onLaunch: () => {},
    onTerminate: () => {},
    close: async () => {},
  };

  const handle = (params: URLSearchParams): { status: number; body: string } => {
    const action = params.get("Action") ?? "";
    calls.push({ action, params });
    const failure = failures.get(action);
    if (failure) {
      failures.delete(action);
      return error(failure.code === "RequestLimitExceeded" ? 503 : 400, failure.code, failure.message);
    }
    switch (action) {
      case "RunInstances":
        return runInstances(params);
      case "DescribeInstances":
        return describeInstances(params);
      case "TerminateInstances":
        return terminateInstances(params);
      case "CreateTags":
        return createTags(params);
      default:
        return error(400, "InvalidAction", `The action ${action} is not valid for this web service.`);
    }
  };

  const runInstances = (p: URLSearchParams) => {
    const subnetId = p.get("SubnetId") ?? "subnet-default0";
    if (fake.noCapacityIn.has(subnetId)) {
      return error(
        400,
        "InsufficientInstanceCapacity",
        `We currently do not have sufficient capacity in ${subnetId}.`,
      );
    }
    const launchTemplateId = p.get("LaunchTemplate.LaunchTemplateId") ?? "";
    if (!/^lt-[0-9a-f]+$/.test(launchTemplateId)) {
      return error(
        400,
        "InvalidLaunchTemplateId.Malformed",
        `The launch template ID '${launchTemplateId}' is malformed.`,
      );
    }
    const count = Number(p.get("MaxCount") ?? "1");
    const tags = new Map<string, string>();
    for (let s = 1; p.has(`TagSpecification.${s}.ResourceType`); s++) {
      if (p.get(`TagSpecification.${s}.ResourceType`) !== "instance") continue;
      for (let t = 1; p.has(`TagSpecification.${s}.Tag.${t}.Key`); t++) {
        tags.set(
          p.get(`TagSpecification.${s}.Tag.${t}.Key`) ?? "",
          p.get(`TagSpecification.${s}.Tag.${t}.Value`) ?? "",
        );
      }
    }
    const made: FakeInstance[] = [];
    for (let n = 0; n < count; n++) {
      const id = `i-${randomBytes(8).toString("hex").slice(0, 17)}`;
      const i: FakeInstance = {
        id,
        state: "pending",
        tags: new Map(tags),
        launchTemplateId,
        subnetId,
        spot: p.get("InstanceMarketOptions.MarketType") === "spot",
        privateDnsName: `ip-10-42-0-${instances.size + 10}.ec2.internal`,
      };
      instances.set(id, i);
      made.push(i);
    }
    for (const i of made) fake.onLaunch(i);
    return ok(
      "RunInstancesResponse",
      `<reservationId>r-${randomBytes(8).toString("hex")}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${made.map(instanceXml).join("")}</instancesSet>`,
    );
  };

  const describeInstances = (p: URLSearchParams) => {
    const ids = listParam(p, "InstanceId");
    for (const id of ids) {
      if (!instances.has(id))
        return error(400, "InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    }
    const filters: { name: string; values: string[] }[] = [];
    for (let f = 1; p.has(`Filter.${f}.Name`); f++) {
      filters.push({ name: p.get(`Filter.${f}.Name`) ?? "", values: listParam(p, `Filter.${f}.Value`) });
    }
    // Time passes between calls: each describe moves instances one state on.
    for (const i of instances.values()) {
      if (i.state === "pending") i.state = "running";
      else if (i.state === "shutting-down") i.state = "terminated";
    }
    const match = (i: FakeInstance) =>
      (ids.length === 0 || ids.includes(i.id)) &&
      filters.every((f) => {
        if (f.name === "instance-state-name") return f.values.includes(i.state);
        if (f.name.startsWith("tag:")) return f.values.includes(i.tags.get(f.name.slice(4)) ?? "\u0000");
        return true;
      });
    const items = [...instances.values()].filter(match);
    const reservations = items
      .map(
        (i) =>
          `<item><reservationId>r-${i.id.slice(2)}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>${instanceXml(i)}</instancesSet></item>`,
      )
      .join("");
    return ok("DescribeInstancesResponse", `<reservationSet>${reservations}</reservationSet>`);
  };

  const terminateInstances = (p: URLSearchParams) => {
    const ids = listParam(p, "InstanceId");
    for (const id of ids) {
      if (!instances.has(id))
        return error(400, "InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    }
    const items = ids.map((id) => {
      const i = instances.get(id) as FakeInstance;
      const previous = i.state;
      if (i.state !== "terminated") i.state = "shutting-down";
      if (previous !== "terminated" && previous !== "shutting-down") fake.onTerminate(i);
      return `<item><instanceId>${id}</instanceId><currentState>${stateXml(i.state)}</currentState><previousState>${stateXml(previous)}</previousState></item>`;
    });
    return ok("TerminateInstancesResponse", `<instancesSet>${items.join("")}</instancesSet>`);
  };

  const createTags = (p: URLSearchParams) => {
    const ids = listParam(p, "ResourceId");
    for (const id of ids) {
      const i = instances.get(id);
      if (!i) return error(400, "InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
      for (let t = 1; p.has(`Tag.${t}.Key`); t++)
        i.tags.set(p.get(`Tag.${t}.Key`) ?? "", p.get(`Tag.${t}.Value`) ?? "");
    }
    return ok("CreateTagsResponse", "<return>true</return>");
  };

  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      body += d;
    });
    req.on("end", () => {
      const r = handle(new URLSearchParams(body));
      res.writeHead(r.status, { "content-type": "text/xml;charset=UTF-8" });
      res.end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

function listParam(p: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (let n = 1; p.has(`${name}.${n}`); n++) out.push(p.get(`${name}.${n}`) ?? "");
  return out;
}

function instanceXml(i: FakeInstance): string {
  const tags = [...i.tags]
    .map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`)
    .join("");
  return `<item><instanceId>${i.id}</instanceId><imageId>ami-0123456789abcdef0</imageId><instanceState>${stateXml(i.state)}</instanceState><privateDnsName>${i.privateDnsName}</privateDnsName><instanceType>c6i.large</instanceType><launchTime>${new Date().toISOString()}</launchTime><subnetId>${i.subnetId}</subnetId>${i.spot ? "<instanceLifecycle>spot</instanceLifecycle>" : ""}<tagSet>${tags}</tagSet></item>`;
}

function stateXml(state: FakeInstance["state"]): string {
  return `<code>${STATE_CODES[state]}</code><name>${state}</name>`;
}

function ok(root: string, inner: string): { status: number; body: string } {
  return {
    status: 200,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomBytes(8).toString("hex")}</requestId>${inner}</${root}>`,
  };
}

function error(status: number, code: string, message: string): { status: number; body: string } {
  return {
    status,
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${randomBytes(8).toString("hex")}</RequestID></Response>`,
  };
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
