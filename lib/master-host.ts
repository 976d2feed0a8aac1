import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Aws, Stack } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import { Construct } from "constructs";
import { MASTER_TAGS } from "../core/deployment.ts";
import { hardenedLaunchTemplate } from "./hardened-launch-template.ts";
import { renderMasterUserData } from "./master-user-data.ts";
import { acknowledge, nagResource } from "./nag.ts";
import { grantBundleRead, grantObjectWrites } from "./object-grants.ts";

export interface MasterHostProps {
  readonly securityGroup: ec2.ISecurityGroup;
  /** The master's managed policy: the host's role gets exactly what a user running the master gets. */
  readonly masterPolicy: iam.IManagedPolicy;
  /** Where the host puts each run's status and report, under `runsPrefix/RUN_ID/`. */
  readonly logsBucket: s3.IBucket;
  /** Key prefix of the runs in `logsBucket`, without leading or trailing `/`. */
  readonly runsPrefix: string;
  /** The master crawls the source and holds the TOC: a small general-purpose type does. */
  readonly instanceType: ec2.InstanceType;
  /** The NFS or EFS export of the source, `host:/path`, mounted as on the workers. */
  readonly sourceNfs: string;
  readonly sourceMount: string;
  /**
   * The CLI bundle uploaded as an asset.
   * @default dist/s3-bucket-loader.cjs of this package (`npm run build` makes it)
   */
  readonly bundlePath?: string;
}

/**
 * A host for the master, so that a load of many hours does not depend on the user's machine: its own role (the
 * master's managed policy, and writing runs under `runs/` of the logs bucket), the CLI bundle as an S3 asset,
 * and a launch template like the workers' (Amazon Linux 2023, IMDSv2 only with tags readable, encrypted root
 * volume, no inbound access). An instance launched from it runs one load (arguments from its tags), publishes
 * the status and report to S3, and terminates.
 */
export class MasterHost extends Construct {
  /** The key prefix of the runs in the logs bucket. */
  public static readonly RUNS_PREFIX = "runs";
  public readonly role: iam.Role;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly bundle: Asset;

  constructor(scope: Construct, id: string, props: MasterHostProps) {
    super(scope, id);
    if (props.runsPrefix === "" || props.runsPrefix.startsWith("/") || props.runsPrefix.endsWith("/")) {
      throw new Error(
        `runsPrefix must be non-empty and not start or end with '/', got ${JSON.stringify(props.runsPrefix)}`,
      );
    }

    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: "s3-bucket-loader master host",
      managedPolicies: [
        props.masterPolicy,
        // Session Manager shell to watch the master: there is no SSH and no inbound rule.
        iam.ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore"),
      ],
    });
    const profile = new iam.InstanceProfile(this, "InstanceProfile", { role: this.role });

    const bundlePath =
      props.bundlePath ?? fileURLToPath(new URL("../dist/s3-bucket-loader.cjs", import.meta.url));
    if (!existsSync(bundlePath)) {
      throw new Error(`MasterHost: the CLI bundle ${bundlePath} does not exist; run npm run build first`);
    }
    this.bundle = new Asset(this, "CliBundle", { path: bundlePath });
    grantBundleRead(this.role, this.bundle);
    grantObjectWrites(this.role, props.logsBucket, `${props.runsPrefix}/*`);
    acknowledge(
      this.role,
      "IAM4",
      "AmazonSSMManagedInstanceCore is the documented policy for Session Manager, the only way into the master host",
      ["Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"],
    );
    acknowledge(
      this.role,
      "IAM5",
      "the host writes each run's files under the runs prefix, named after a run id known only at run time",
      [nagResource(this, props.logsBucket.arnForObjects(`${props.runsPrefix}/*`))],
    );

    const userData = ec2.UserData.custom(
      renderMasterUserData({
        region: Aws.REGION,
        bundleUrl: this.bundle.s3ObjectUrl,
        stackName: Stack.of(this).stackName,
        source: { nfsExport: props.sourceNfs, mountPoint: props.sourceMount },
        runs: { bucket: props.logsBucket.bucketName, prefix: props.runsPrefix },
        runTagKey: MASTER_TAGS.runId,
        argsTagKey: MASTER_TAGS.args,
      }),
    );

    this.launchTemplate = hardenedLaunchTemplate(this, "LaunchTemplate", {
      instanceType: props.instanceType,
      instanceProfile: profile,
      securityGroup: props.securityGroup,
      userData,
      rootVolumeGiB: 20,
    });
  }
}
