import { Aws, CfnOutput, Fn, Stack, type StackProps } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import type { Construct } from "constructs";
import { STACK_OUTPUTS, type StackOutputName } from "../core/deployment.ts";
import { CONTEXT_DEFAULTS, type LoaderContext } from "./context.ts";
import { LogsBucket } from "./logs-bucket.ts";
import { MasterHost } from "./master-host.ts";
import { MasterPolicy } from "./master-policy.ts";
import { Messaging } from "./messaging.ts";
import { TargetBucket } from "./target-bucket.ts";
import { WorkerFleet } from "./worker-fleet.ts";
import { WorkerNetwork } from "./worker-network.ts";

export interface LoaderStackProps extends StackProps {
  /**
   * The stack's settings (`parseLoaderContext` reads them from CDK context).
   * @default CONTEXT_DEFAULTS
   */
  readonly settings?: LoaderContext;
  /**
   * The worker bundle.
   * @default dist/worker.cjs of this package
   */
  readonly workerBundlePath?: string;
}

/**
 * The load stack: the run's channels, the target bucket, a bucket for logs, the workers' network, role and
 * launch template, the master's managed policy, and a host to run the master on. Its outputs are all the master needs (`--stack NAME`).
 */
export class LoaderStack extends Stack {
  public readonly messaging: Messaging;
  public readonly target: TargetBucket;
  public readonly logs: LogsBucket;
  public readonly network: WorkerNetwork;
  public readonly fleet: WorkerFleet;
  public readonly masterPolicy: MasterPolicy;
  public readonly masterHost: MasterHost;

  constructor(scope: Construct, id: string, props: LoaderStackProps = {}) {
    super(scope, id, props);
    const s = props.settings ?? CONTEXT_DEFAULTS;
    this.messaging = new Messaging(this, "Messaging");
    this.target = new TargetBucket(this, "Target", {
      bucketName: s.targetBucket,
      create: s.createBucket,
      kmsKey: s.kmsKeyArn,
    });
    this.logs = new LogsBucket(this, "Logs");
    this.network = new WorkerNetwork(this, "Network", { vpcId: s.vpcId });
    this.fleet = new WorkerFleet(this, "Workers", {
      messaging: this.messaging,
      vpc: this.network.vpc,
      subnets: this.network.subnets,
      securityGroup: this.network.securityGroup,
      targetBucket: this.target.bucket,
      targetKey: this.target.encryptionKey,
      targetPrefix: s.targetPrefix,
      logsBucket: this.logs.bucket,
      logsPrefix: LogsBucket.PREFIX,
      instanceType: new ec2.InstanceType(s.instanceType),
      volumeGiB: s.volumeGiB,
      sourceNfs: s.sourceNfs,
      sourceMount: s.sourceMount,
      targetMount: s.targetMount,
      yas3fsCacheMiB: s.yas3fsCacheMiB,
      yas3fsTopicArn: s.yas3fsTopicArn,
      yas3fsRef: s.yas3fsRef,
      workerConcurrency: s.workerConcurrency,
      copier: s.copier,
      controlQueuePrefix: s.controlQueuePrefix,
      ...(props.workerBundlePath ? { bundlePath: props.workerBundlePath } : {}),
    });
    this.masterPolicy = new MasterPolicy(this, "Master", {
      messaging: this.messaging,
      fleet: this.fleet,
      subnets: this.network.subnets,
      securityGroup: this.network.securityGroup,
      logsBucket: this.logs.bucket,
      controlQueuePrefix: s.controlQueuePrefix,
      deletes: s.allowDelete
        ? { bucket: this.target.bucket, keyPattern: s.targetPrefix ? `${s.targetPrefix}/*` : "*" }
        : undefined,
    });

    this.masterHost = new MasterHost(this, "MasterHost", {
      securityGroup: this.network.securityGroup,
      masterPolicy: this.masterPolicy.policy,
      logsBucket: this.logs.bucket,
      runsPrefix: MasterHost.RUNS_PREFIX,
      instanceType: new ec2.InstanceType(s.instanceType),
      sourceNfs: s.sourceNfs,
      sourceMount: s.sourceMount,
    });

    const outputs: Record<StackOutputName, string> = {
      [STACK_OUTPUTS.region]: Aws.REGION,
      [STACK_OUTPUTS.topicArn]: this.messaging.controlTopic.topicArn,
      [STACK_OUTPUTS.tocQueueUrl]: this.messaging.tocQueue.queueUrl,
      [STACK_OUTPUTS.deadLetterQueueUrl]: this.messaging.deadLetterQueue.queueUrl,
      [STACK_OUTPUTS.reportQueueUrl]: this.messaging.reportQueue.queueUrl,
      [STACK_OUTPUTS.targetBucket]: this.target.bucket.bucketName,
      [STACK_OUTPUTS.logsBucket]: this.logs.bucket.bucketName,
      [STACK_OUTPUTS.launchTemplateId]: this.fleet.launchTemplate.launchTemplateId ?? "",
      [STACK_OUTPUTS.subnetIds]: Fn.join(",", this.network.subnets.subnetIds),
      [STACK_OUTPUTS.securityGroupId]: this.network.securityGroup.securityGroupId,
      [STACK_OUTPUTS.workerRoleArn]: this.fleet.role.roleArn,
      [STACK_OUTPUTS.masterPolicyArn]: this.masterPolicy.policy.managedPolicyArn,
      [STACK_OUTPUTS.fleetName]: this.fleet.fleetName,
      [STACK_OUTPUTS.masterLaunchTemplateId]: this.masterHost.launchTemplate.launchTemplateId ?? "",
    };
    // Output ids sit directly under the stack, so their names are exactly these (the master reads them).
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}
