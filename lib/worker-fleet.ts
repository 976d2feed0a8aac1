import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Aws, Stack } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import * as sns from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { FLEET_TAGS } from "../core/deployment.ts";
import { ENV } from "../core/env-names.ts";
import { amazonLinux2023, hardenedLaunchTemplate } from "./hardened-launch-template.ts";
import type { Messaging } from "./messaging.ts";
import { acknowledge, nagResource } from "./nag.ts";
import { grantBundleRead, grantObjectEncryption, grantObjectWrites } from "./object-grants.ts";
import { renderWorkerUserData, WORKER_PATHS } from "./user-data.ts";

export interface WorkerFleetProps {
  readonly messaging: Messaging;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SelectedSubnets;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly targetBucket: s3.IBucket;
  /**
   * The target objects' KMS key (SSE-KMS), which the workers may use to write and read them.
   * @default none: S3-managed encryption
   */
  readonly targetKey?: kms.IKey | undefined;
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
   * @default dist/worker.cjs of this package (`npm run build` makes it)
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
  /** The launch template's image, which is the only one the master may launch. */
  private readonly image: ec2.IMachineImage;

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

    const bundlePath = props.bundlePath ?? fileURLToPath(new URL("../dist/worker.cjs", import.meta.url));
    if (!existsSync(bundlePath)) {
      throw new Error(`WorkerFleet: the worker bundle ${bundlePath} does not exist; run npm run build first`);
    }
    this.bundle = new Asset(this, "WorkerBundle", { path: bundlePath });

    props.messaging.grantWorker(this.role, props.controlQueuePrefix);
    this.grantTarget(props.targetBucket, props.targetPrefix);
    if (props.targetKey) grantObjectEncryption(this.role, props.targetKey);
    grantObjectWrites(this.role, props.logsBucket, `${props.logsPrefix}/*`);
    grantBundleRead(this.role, this.bundle);
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
      "the workers write keys they learn at run time: any key under the target prefix (through yas3fs, which also lists, reads and deletes) and their logs under the logs prefix",
      [
        nagResource(this, props.targetBucket.arnForObjects(targetObjects(props.targetPrefix))),
        nagResource(this, props.logsBucket.arnForObjects(`${props.logsPrefix}/*`)),
      ],
    );
    this.image = amazonLinux2023(props.instanceType);

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
          // On an On-Demand instance the notice never comes (404 every 5 s); on a Spot one it drains the worker.
          [ENV.spotNotice]: "true",
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
   * What the master needs to launch and end workers: RunInstances only through this launch template (its image,
   * its security group, its volumes: `ec2:IsLaunchTemplateResource`), into the given subnets, with the fleet
   * tag; tags only at launch and only with the fleet tag; termination only of instances with the fleet tag;
   * passing the worker role.
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
    const fromTemplate = { ArnEquals: { "ec2:LaunchTemplate": launchTemplateArn } };
    const asInTemplate = { ...fromTemplate, Bool: { "ec2:IsLaunchTemplateResource": "true" } };
    // Amazon's AMIs have no account in their ARN.
    const imageArn = stack.formatArn({
      service: "ec2",
      account: "",
      resource: "image",
      resourceName: this.image.getImage(this).imageId,
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:RunInstances"],
      resourceArns: [launchTemplateArn],
    });
    // What the template names, as it names it: the request may not swap the image or the security group.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:RunInstances"],
      resourceArns: [imageArn, ec2Arn("security-group", securityGroup.securityGroupId)],
      conditions: asInTemplate,
    });
    // The instance and its volume are created from the template and must carry the fleet tag.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:RunInstances"],
      resourceArns: [ec2Arn("instance"), ec2Arn("volume")],
      conditions: { ...asInTemplate, StringEquals: fleetTag },
    });
    // The template names no subnet: the master picks one of the stack's (its network interface is made there),
    // and asks for a Spot request with --spot.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:RunInstances"],
      resourceArns: [
        ...subnets.subnetIds.map((id) => ec2Arn("subnet", id)),
        ec2Arn("network-interface"),
        ec2Arn("spot-instances-request"),
      ],
      conditions: fromTemplate,
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["ec2:CreateTags"],
      resourceArns: [ec2Arn("instance"), ec2Arn("volume")],
      conditions: { StringEquals: { "ec2:CreateAction": "RunInstances", ...fleetTag } },
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
      "instances, volumes, network interfaces and Spot requests do not exist before RunInstances creates them: they are scoped by the launch template, the fleet tag and the CreateAction instead; DescribeInstances has no resource-level permissions",
      [
        nagResource(this, ec2Arn("instance")),
        nagResource(this, ec2Arn("volume")),
        nagResource(this, ec2Arn("network-interface")),
        nagResource(this, ec2Arn("spot-instances-request")),
        "Resource::*",
      ],
    );
  }

  /**
   * The target: list only under the prefix, read, write and delete objects under it (CopyObject, which yas3fs
   * uses to change an object's metadata, copies its tags: hence the tagging pair), and ask where the bucket is
   * (yas3fs does at mount). No object versions, no Object Lock retention or legal hold, no bucket settings.
   */
  private grantTarget(bucket: s3.IBucket, prefix: string): void {
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ["s3:ListBucket"],
      resourceArns: [bucket.bucketArn],
      ...(prefix ? { conditions: { StringLike: { "s3:prefix": `${prefix}/*` } } } : {}),
    });
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ["s3:GetBucketLocation"],
      resourceArns: [bucket.bucketArn],
    });
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: [
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
      ],
      resourceArns: [bucket.arnForObjects(targetObjects(prefix))],
    });
  }

  /** yas3fs publishes its changes to the topic and receives the others' through a queue of its own. */
  private grantYas3fsInvalidation(topicArn: string): void {
    const topic = sns.Topic.fromTopicArn(this, "Yas3fsTopic", topicArn);
    const queues = Stack.of(this).formatArn({ service: "sqs", resource: "yas3fs-*" });
    topic.grantPublish(this.role);
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ["sns:Subscribe"],
      resourceArns: [topicArn],
      conditions: { StringEquals: { "sns:Protocol": "sqs" }, StringLike: { "sns:Endpoint": queues } },
    });
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
      resourceArns: [queues],
    });
    acknowledge(
      this.role,
      "IAM5",
      "yas3fs creates its own queue at mount time (--new-queue), named yas3fs-BUCKET-PREFIX-NODE: only the prefix is known",
      [nagResource(this, queues)],
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

/** The target's objects the workers may touch: those under the prefix, or every key for the whole bucket. */
function targetObjects(prefix: string): string {
  return prefix ? `${prefix}/*` : "*";
}
