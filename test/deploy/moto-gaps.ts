/**
 * Where moto differs from AWS, worked around here and only here, in the test (never in the product). Each
 * workaround says what moto lacks; the suite checks the thing moto skips on the template or the policy itself.
 */
import {
  DeleteInternetGatewayCommand,
  DeleteRouteTableCommand,
  DeleteVpcEndpointsCommand,
  DescribeInternetGatewaysCommand,
  DescribeRouteTablesCommand,
  DescribeVpcEndpointsCommand,
  DetachInternetGatewayCommand,
  DisassociateRouteTableCommand,
  type EC2Client,
} from "@aws-sdk/client-ec2";

/**
 * moto's CloudFormation deletes a VPC's route tables, routes, subnet associations, internet gateway and
 * gateway endpoint as no-ops, so `cdk destroy` then fails on the VPC ("has dependencies"). This deletes
 * them first, as CloudFormation would in the stack's own destroy. Returns what it deleted, for the test to
 * compare with the template's resources.
 */
export async function clearVpcForDestroy(
  ec2: EC2Client,
  vpcId: string,
): Promise<{ endpoints: number; routeTables: number; internetGateways: number }> {
  const vpc = [{ Name: "vpc-id", Values: [vpcId] }];
  const endpoints = (await ec2.send(new DescribeVpcEndpointsCommand({ Filters: vpc }))).VpcEndpoints ?? [];
  const ids = endpoints.map((e) => e.VpcEndpointId ?? "");
  if (ids.length > 0) await ec2.send(new DeleteVpcEndpointsCommand({ VpcEndpointIds: ids }));
  const tables = (await ec2.send(new DescribeRouteTablesCommand({ Filters: vpc }))).RouteTables ?? [];
  let routeTables = 0;
  for (const t of tables) {
    if ((t.Associations ?? []).some((a) => a.Main)) continue;
    for (const a of t.Associations ?? []) {
      await ec2.send(new DisassociateRouteTableCommand({ AssociationId: a.RouteTableAssociationId }));
    }
    await ec2.send(new DeleteRouteTableCommand({ RouteTableId: t.RouteTableId }));
    routeTables++;
  }
  const gateways =
    (
      await ec2.send(
        new DescribeInternetGatewaysCommand({ Filters: [{ Name: "attachment.vpc-id", Values: [vpcId] }] }),
      )
    ).InternetGateways ?? [];
  for (const g of gateways) {
    await ec2.send(
      new DetachInternetGatewayCommand({ InternetGatewayId: g.InternetGatewayId, VpcId: vpcId }),
    );
    await ec2.send(new DeleteInternetGatewayCommand({ InternetGatewayId: g.InternetGatewayId }));
  }
  return { endpoints: ids.length, routeTables, internetGateways: gateways.length };
}

export interface PolicyStatement {
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: unknown;
}

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly PolicyStatement[];
}

/** Services whose resource ARNs moto's IAM does not match: it checks their actions against `*` only. */
const RESOURCES_UNMATCHED = ["ec2", "sns", "cloudformation", "iam"];

/** SQS batch calls, which moto checks under their own names (AWS authorizes them by the single action). */
const SQS_BATCH: Readonly<Record<string, string>> = {
  "sqs:SendMessage": "sqs:SendMessageBatch",
  "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
  "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
};

/**
 * What a policy needs besides itself for moto to allow what AWS allows: the same actions on `*` for the
 * services whose ARNs moto does not match (moto evaluates no condition either: those statements lose theirs),
 * and the batch names of SQS actions on the same queues. It adds no action the policy lacks: an action left
 * out stays denied, and SQS (but for CreateQueue) and S3 stay scoped to the policy's own ARNs.
 */
export function motoSupplement(doc: PolicyDocument): PolicyDocument | null {
  const out: PolicyStatement[] = [];
  for (const s of doc.Statement) {
    if (s.Effect !== "Allow") continue;
    const actions = [s.Action].flat();
    const resources = [s.Resource].flat();
    const service = (arn: string) => (arn === "*" ? "*" : (arn.split(":")[2] ?? ""));
    if (resources.some((r) => RESOURCES_UNMATCHED.includes(service(r)))) {
      out.push({ Effect: "Allow", Action: actions, Resource: "*" });
    }
    // moto checks CreateQueue against `*`: the queue's ARN does not exist yet when it evaluates.
    if (actions.includes("sqs:CreateQueue"))
      out.push({ Effect: "Allow", Action: ["sqs:CreateQueue"], Resource: "*" });
    const batch = actions.flatMap((a) => (SQS_BATCH[a] ? [SQS_BATCH[a]] : []));
    if (batch.length > 0) out.push({ Effect: "Allow", Action: batch, Resource: resources });
  }
  return out.length > 0 ? { Version: "2012-10-17", Statement: out } : null;
}
