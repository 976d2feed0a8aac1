import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Aws, Stack } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import * as sns from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { FLEET_TAGS } from "../core/deployment.ts";
import { ENV } from "../core/env-names.ts";
import { hardenedLaunchTemplate } from "./hardened-launch-template.ts";
import type { Messaging } from "./messaging.ts";
import { acknowledge, nagResource } from "./nag.ts";
import { renderWorkerUserData, WORKER_PATHS } from "./user-data.ts";

export interface WorkerFleetProps {
  readonly messaging: Messaging;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SelectedSubnets;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly targetBucket: s3.IBucket;
  /** Key prefix the workers write under, without leading or trailing `/`; '' for the whole bucket. */
  readonly targetPrefix: string;
  readonly logsBucket: s3.IBucket;
  /** Key prefix of the logs in `logsBucket`. */
  readonly logsPrefix: string;
  readonly instanceType: ec2.InstanceType;
  /** Size of the encrypted root volume, which also holds yas3fs's disk cache. */
  readonly volumeGiB: number;
  /** The NFS or EFS export of the source, `host:/path`. */
  readonly sourceNfs: string;
  readonly sourceMount: string;
  readonly targetMount: string;
  readonly yas3fsCacheMiB: number;
  /** @default no yas3fs cache invalidation between nodes */
  readonly yas3fsTopicArn?: string | undefined;
  readonly yas3fsRef: string;
  readonly workerConcurrency: number;
  readonly copier: "fs" | "rsync";
  readonly controlQueuePrefix: string;
  /**
   * The worker bundle uploaded as an asset.
   * @default dist/worker.mjs of this package (`npm run build` makes it)
   */
  readonly bundlePath?: string;
}

/**
 * The workers: an instance role and profile, the worker bundle as an S3 asset, and a launch template the
 * master launches from (Amazon Linux 2023 from the public SSM parameter, IMDSv2 only with instance tags
 * readable, encrypted root volume, no inbound access, rendered boot script). A worker that finishes its run
 * powers off, and the template makes that a termination.
 */
export class WorkerFleet extends Construct {
  public readonly role: iam.Role;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly bundle: Asset;
  /** The value of the fleet tag: the master may only terminate instances that carry it. */
  public readonly fleetName: string;

  constructor(scope: Construct, id: string, props: WorkerFleetProps) {
    super(scope, id);
    validate(props);
    this.fleetName = Stack.of(this).stackName;

    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: "s3-bucket-loader workers",
      // Session Manager shell for debugging a worker: there is no SSH and no inbound rule.
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore")],
    });
    const profile = new iam.InstanceProfile(this, "InstanceProfile", { role: this.role });

    const bundlePath = props.bundlePath ?? fileURLToPath(new URL("../dist/worker.mjs", import.meta.url));
    if (!existsSync(bundlePath)) {
      throw new Error(`WorkerFleet: the worker bundle ${bundlePath} does not exist; run npm run build first`);
    }
    this.bundle = new Asset(this, "WorkerBundle", { path: bundlePath });

    props.messaging.grantWorker(this.role, props.controlQueuePrefix);
    props.targetBucket.grantReadWrite(this.role, props.targetPrefix ? `${props.targetPrefix}/*` : "*");
    props.logsBucket.grantPut(this.role, `${props.logsPrefix}/*`);
    this.bundle.grantRead(this.role);
    if (props.yas3fsTopicArn) this.grantYas3fsInvalidation(props.yas3fsTopicArn);
    acknowledge(
      this.role,
      "IAM4",
      "AmazonSSMManagedInstanceCore is the documented policy for Session Manager, the only way into a worker",
      ["Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"],
    );
    acknowledge(
      this.role,
      "IAM5",
      "object-level grants from CDK's bucket grants: the workers write any key under the target prefix (through yas3fs, which also lists, reads and deletes), their logs under the logs prefix, and read the bundle asset",
      [
        "Action::s3:GetObject*",
        "Action::s3:GetBucket*",
        "Action::s3:List*",
        "Action::s3:DeleteObject*",
        "Action::s3:Abort*",
        nagResource(
          this,
          props.targetBucket.arnForObjects(props.targetPrefix ? `${props.targetPrefix}/*` : "*"),
        ),
        nagResource(this, props.logsBucket.arnForObjects(`${props.logsPrefix}/*`)),
        nagResource(this, this.bundle.bucket.arnForObjects("*")),
      ],
    );

    const userData = ec2.UserData.custom(
      renderWorkerUserData({
        region: Aws.REGION,
        bundleUrl: this.bundle.s3ObjectUrl,
        source: { nfsExport: props.sourceNfs, mountPoint: props.sourceMount },
        target: {
          bucket: props.targetBucket.bucketName,
          prefix: props.targetPrefix,
          mountPoint: props.targetMount,
          cacheMiB: props.yas3fsCacheMiB,
          yas3fsTopicArn: props.yas3fsTopicArn,
          yas3fsRef: props.yas3fsRef,
        },
        logs: { bucket: props.logsBucket.bucketName, prefix: props.logsPrefix },
        runTagKey: FLEET_TAGS.runId,
        env: {
          [ENV.region]: Aws.REGION,
          [ENV.topicArn]: props.messaging.controlTopic.topicArn,
          [ENV.tocQueueUrl]: props.messaging.tocQueue.queueUrl,
          [ENV.reportQueueUrl]: props.messaging.reportQueue.queueUrl,
          [ENV.source]: props.sourceMount,
          [ENV.target]: props.targetMount,
          [ENV.concurrency]: String(props.workerConcurrency),
          [ENV.copier]: props.copier,
          [ENV.controlQueuePrefix]: props.controlQueuePrefix,
          [ENV.logFormat]: "json",
          [ENV.beforeValidateCmd]: `${WORKER_PATHS.hooks}/before-validate.sh`,
        },
      }),
    );

    this.launchTemplate = hardenedLaunchTemplate(this, "LaunchTemplate", {
      instanceType: props.instanceType,
      instanceProfile: profile,
      securityGroup: props.securityGroup,
      userData,
      rootVolumeGiB: props.volumeGiB,
    });
  }

  /**
   * What the master needs to launch and end workers: RunInstances from this launch template only, with the
   * fleet tag; tags only at launch; termination only of instances with the fleet tag; passing the worker role.
   */
  grantLaunch(
    grantee: iam.IGrantable,
    subnets: ec2.SelectedSubnets,
    securityGroup: ec2.ISecurityGroup,
  ): void {
    const stack = Stack.of(this);
    const ec2Arn = (resource: string, resourceName = "*") =>
      stack.formatArn({ service: "ec2", resource, resourceName });
    const fleetTag = { [`aws:RequestTag/${FLEET_TAGS.fleet}`]: this.fleetName };
    const launchTemplateArn = ec2Arn("launch-template", this.launchTemplate.launchTemplateId ?? "*");
    // The instance and its volume are created by RunInstances and must carry the fleet tag.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:RunInstances"],
      resourceArns: [ec2Arn("instance"), ec2Arn("volume")],
      conditions: {
        StringEquals: { ...fleetTag, "ec2:LaunchTemplate": launchTemplateArn },
      },
    });
    // The existing resources RunInstances uses: the template, the subnets and group it names, AMIs.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:RunInstances"],
      resourceArns: [
        launchTemplateArn,
        ...subnets.subnetIds.map((id) => ec2Arn("subnet", id)),
        ec2Arn("security-group", securityGroup.securityGroupId),
        ec2Arn("network-interface"),
        ec2Arn("spot-instances-request"),
        stack.formatArn({ service: "ec2", account: "", resource: "image", resourceName: "*" }),
      ],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:CreateTags"],
      resourceArns: [ec2Arn("instance"), ec2Arn("volume"), ec2Arn("spot-instances-request")],
      conditions: { StringEquals: { "ec2:CreateAction": "RunInstances" } },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:TerminateInstances"],
      resourceArns: [ec2Arn("instance")],
      conditions: { StringEquals: { [`aws:ResourceTag/${FLEET_TAGS.fleet}`]: this.fleetName } },
    });
    // DescribeInstances has no resource-level permissions.
    iam.Grant.addToPrincipal({ grantee, actions: ["ec2:DescribeInstances"], resourceArns: ["*"] });
    // The first Spot launch in an account creates EC2's service-linked role for Spot.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["iam:CreateServiceLinkedRole"],
      resourceArns: [
        stack.formatArn({
          service: "iam",
          region: "",
          resource: "role",
          resourceName: "aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
        }),
      ],
      conditions: { StringEquals: { "iam:AWSServiceName": "spot.amazonaws.com" } },
    });
    this.role.grantPassRole(grantee.grantPrincipal);
    acknowledge(
      grantee,
      "IAM5",
      "instances, volumes, network interfaces and Spot requests do not exist before RunInstances creates them: they are scoped by the fleet tag, the launch template and the CreateAction instead; AMIs are Amazon's; DescribeInstances has no resource-level permissions",
      [
        nagResource(this, ec2Arn("instance")),
        nagResource(this, ec2Arn("volume")),
        nagResource(this, ec2Arn("network-interface")),
        nagResource(this, ec2Arn("spot-instances-request")),
        nagResource(
          this,
          stack.formatArn({ service: "ec2", account: "", resource: "image", resourceName: "*" }),
        ),
        "Resource::*",
      ],
    );
  }

  /** yas3fs publishes its changes to the topic and receives the others' through a queue of its own. */
  private grantYas3fsInvalidation(topicArn: string): void {
    const topic = sns.Topic.fromTopicArn(this, "Yas3fsTopic", topicArn);
    topic.grantPublish(this.role);
    topic.grantSubscribe(this.role);
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ["sns:Unsubscribe", "sns:GetTopicAttributes", "sns:ConfirmSubscription"],
      resourceArns: [topicArn],
    });
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: [
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
      ],
      resourceArns: [Stack.of(this).formatArn({ service: "sqs", resource: "yas3fs-*" })],
    });
    acknowledge(
      this.role,
      "IAM5",
      "yas3fs creates its own queue at mount time (--new-queue), named yas3fs-BUCKET-PREFIX-NODE: only the prefix is known",
      [nagResource(this, Stack.of(this).formatArn({ service: "sqs", resource: "yas3fs-*" }))],
    );
  }
}

function validate(props: WorkerFleetProps): void {
  if (!Number.isInteger(props.volumeGiB) || props.volumeGiB < 8 || props.volumeGiB > 16_384) {
    throw new Error(`volumeGiB must be an integer from 8 to 16384, got ${props.volumeGiB}`);
  }
  // yas3fs keeps its whole disk cache on the root volume: leave room for the system (about 4 GiB).
  if (props.yas3fsCacheMiB > (props.volumeGiB - 4) * 1024) {
    throw new Error(
      `yas3fsCacheMiB ${props.yas3fsCacheMiB} does not fit on a ${props.volumeGiB} GiB root volume; give at most ${(props.volumeGiB - 4) * 1024} or a bigger volumeGiB`,
    );
  }
  if (props.targetPrefix.startsWith("/") || props.targetPrefix.endsWith("/")) {
    throw new Error(`targetPrefix must not start or end with '/', got ${JSON.stringify(props.targetPrefix)}`);
  }
}
