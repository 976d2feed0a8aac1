/** A stand-in of CloudFormation's DescribeStacks (Query protocol) on 127.0.0.1: stacks by name, with outputs. */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeCloudFormation {
  readonly url: string;
  /** Stack name → its outputs. */
  readonly stacks: Map<string, Record<string, string>>;
  close(): Promise<void>;
}

export async function startFakeCloudFormation(): Promise<FakeCloudFormation> {
  const stacks = new Map<string, Record<string, string>>();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      body += d;
    });
    req.on("end", () => {
      const p = new URLSearchParams(body);
      const name = p.get("StackName") ?? "";
      const outputs = stacks.get(name);
      res.setHeader("content-type", "text/xml");
      if (p.get("Action") !== "DescribeStacks" || !outputs) {
        res.statusCode = 400;
        const [code, message] =
          p.get("Action") !== "DescribeStacks"
            ? ["InvalidAction", "unknown action"]
            : ["ValidationError", `Stack with id ${name} does not exist`];
        res.end(
          `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r</RequestId></ErrorResponse>`,
        );
        return;
      }
      const members = Object.entries(outputs)
        .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
        .join("");
      res.end(
        `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member><StackName>${name}</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/${name}/1</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stacks,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
