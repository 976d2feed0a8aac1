import { Stack } from "aws-cdk-lib";
import type * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import type { Messaging } from "./messaging.ts";
import { acknowledge, nagResource } from "./nag.ts";
import type { WorkerFleet } from "./worker-fleet.ts";

export interface MasterPolicyProps {
  readonly messaging: Messaging;
  readonly fleet: WorkerFleet;
  readonly subnets: ec2.SelectedSubnets;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly logsBucket: s3.IBucket;
  readonly controlQueuePrefix: string;
  /** `master --delete`: the objects it may delete (the target bucket, under its prefix). Default: none. */
  readonly deletes?: { readonly bucket: s3.IBucket; readonly keyPattern: string } | undefined;
}

/**
 * A managed policy for whoever runs the master (attach it to your user or role): the master's part of the
 * channels, launching and ending workers from the stack's launch template, reading the stack's outputs and
 * the workers' logs. Scoped to this stack's resources; the infrastructure tests pin every statement.
 */
export class MasterPolicy extends Construct {
  public readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: MasterPolicyProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.policy = new iam.ManagedPolicy(this, "Policy", {
      description: `s3-bucket-loader: run the master of stack ${stack.stackName}`,
    });
    props.messaging.grantMaster(this.policy, props.controlQueuePrefix);
    props.fleet.grantLaunch(this.policy, props.subnets, props.securityGroup);
    // The workers' logs and the master host's runs (`status --from`): objects, and listing (so that a key not
    // there yet reads as missing, not as denied). No bucket settings, no versions.
    iam.Grant.addToPrincipal({
      grantee: this.policy,
      actions: ["s3:ListBucket"],
      resourceArns: [props.logsBucket.bucketArn],
    });
    iam.Grant.addToPrincipal({
      grantee: this.policy,
      actions: ["s3:GetObject"],
      resourceArns: [props.logsBucket.arnForObjects("*")],
    });
    if (props.deletes) {
      const objects = props.deletes.bucket.arnForObjects(props.deletes.keyPattern);
      iam.Grant.addToPrincipal({
        grantee: this.policy,
        actions: ["s3:DeleteObject"],
        resourceArns: [objects],
      });
      acknowledge(
        this.policy,
        "IAM5",
        "`master --delete` removes what the source lost, anywhere under the target prefix; nothing outside it",
        [nagResource(this, objects)],
      );
    }
    const stackArn = stack.formatArn({
      service: "cloudformation",
      resource: "stack",
      resourceName: `${stack.stackName}/*`,
    });
    iam.Grant.addToPrincipal({
      grantee: this.policy,
      actions: ["cloudformation:DescribeStacks"],
      resourceArns: [stackArn],
    });
    acknowledge(
      this.policy,
      "IAM5",
      "a stack ARN ends in its id, unknown before it exists: the name fixes the stack; the logs bucket holds only the stack's own logs and runs, all of which the master's user may read",
      [nagResource(this, stackArn), nagResource(this, props.logsBucket.arnForObjects("*"))],
    );
  }
}
