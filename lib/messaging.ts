import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { acknowledge, nagResource } from "./nag.ts";

export interface MessagingProps {
  /**
   * How long a TOC batch stays hidden once a worker took it. Workers extend it while they work, so this only
   * bounds how soon a dead worker's batch is handed out again.
   * @default Duration.minutes(5)
   */
  readonly tocVisibilityTimeout?: Duration;
  /**
   * Deliveries of one TOC batch without a result before it goes to the dead-letter queue, where the master
   * reports each of its entries.
   * @default 5
   */
  readonly maxReceiveCount?: number;
}

/**
 * The run's channels: the SNS control topic (master → workers), the SQS TOC queue with its dead-letter queue
 * (master → workers), and the report queue (workers → master). All encrypted and TLS-only: the topic with a
 * customer managed KMS key of its own (rotated yearly), so that only principals granted that key can publish;
 * the queues with SQS-managed keys (SSE-SQS). The workers' control queues, which the topic delivers to, are
 * SSE-SQS too: SNS delivers to those without any key grant, where an SSE-KMS queue would need its key policy to
 * admit the SNS service (and the AWS managed `aws/sqs` key, whose policy cannot be changed, would refuse it).
 */
export class Messaging extends Construct {
  /** The control topic's key: publishers need `kms:GenerateDataKey*` and `kms:Decrypt` on it. */
  public readonly controlTopicKey: kms.Key;
  public readonly controlTopic: sns.Topic;
  public readonly tocQueue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly reportQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: MessagingProps = {}) {
    super(scope, id);
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
      throw new Error(`maxReceiveCount must be an integer from 1 to 1000, got ${maxReceiveCount}`);
    }
    const queueDefaults = {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.DESTROY,
    };
    this.deadLetterQueue = new sqs.Queue(this, "TocDeadLetterQueue", queueDefaults);
    this.tocQueue = new sqs.Queue(this, "TocQueue", {
      ...queueDefaults,
      visibilityTimeout: props.tocVisibilityTimeout ?? Duration.minutes(5),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });
    this.reportQueue = new sqs.Queue(this, "ReportQueue", queueDefaults);
    this.controlTopicKey = new kms.Key(this, "ControlTopicKey", {
      description: `s3-bucket-loader: the control topic of stack ${Stack.of(this).stackName}`,
      enableKeyRotation: true,
      // The topic holds nothing past delivery: the key goes with the stack (after KMS's shortest wait).
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    this.controlTopic = new sns.Topic(this, "ControlTopic", {
      enforceSSL: true,
      masterKey: this.controlTopicKey,
    });
    acknowledge(
      this.reportQueue,
      "SQS3",
      "the master deletes every report it receives and counts an unreadable one as a protocol error: nothing would ever be redriven",
    );
  }

  /**
   * What a worker does on the channels: take TOC batches, report to the master, and own a control queue named
   * `<prefix>-w-<workerId>` that it creates, subscribes to the topic (with a queue policy for the topic),
   * receives from, and deletes with its subscription at exit. It may subscribe only such queues (SQS endpoints
   * named `<prefix>-w-*` of this account and region), never an endpoint of its choice; it cannot publish.
   */
  grantWorker(grantee: iam.IGrantable, controlQueuePrefix: string): void {
    this.tocQueue.grantConsumeMessages(grantee);
    this.reportQueue.grantSendMessages(grantee);
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["sns:Subscribe"],
      resourceArns: [this.controlTopic.topicArn],
      conditions: {
        StringEquals: { "sns:Protocol": "sqs" },
        StringLike: { "sns:Endpoint": this.controlQueueArns(controlQueuePrefix) },
      },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["sns:Unsubscribe"],
      resourceArns: [this.controlTopic.topicArn],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        "sqs:CreateQueue",
        "sqs:GetQueueAttributes",
        "sqs:SetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:DeleteQueue",
      ],
      resourceArns: [this.controlQueueArns(controlQueuePrefix)],
    });
    this.acknowledgeControlQueues(grantee, controlQueuePrefix);
  }

  /**
   * What the master does on the channels: broadcast on the topic (with its key); send to and purge the TOC
   * queue; receive and delete from the report and dead-letter queues; remove the control queue and subscription
   * of a worker that vanished. It can neither send to nor purge the report queue: a holder of this grant cannot
   * forge or drop the workers' results.
   */
  grantMaster(grantee: iam.IGrantable, controlQueuePrefix: string): void {
    this.controlTopic.grantPublish(grantee);
    acknowledge(
      grantee,
      "IAM5",
      "kms:GenerateDataKey* is what SNS documents for publishers to an encrypted topic, on that topic's own key only",
      ["Action::kms:GenerateDataKey*"],
    );
    this.tocQueue.grantSendMessages(grantee);
    this.tocQueue.grantPurge(grantee);
    for (const queue of [this.reportQueue, this.deadLetterQueue]) {
      queue.grant(grantee, "sqs:ReceiveMessage", "sqs:DeleteMessage");
    }
    // Without --dead-letter-queue-url the master finds the dead-letter queue from the TOC queue's RedrivePolicy
    // (GetQueueAttributes, granted with the sends above) and turns its ARN into a URL.
    this.deadLetterQueue.grant(grantee, "sqs:GetQueueUrl");
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["sns:Unsubscribe"],
      resourceArns: [this.controlTopic.topicArn],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ["sqs:DeleteQueue"],
      resourceArns: [this.controlQueueArns(controlQueuePrefix)],
    });
    this.acknowledgeControlQueues(grantee, controlQueuePrefix);
  }

  private acknowledgeControlQueues(grantee: iam.IGrantable, prefix: string): void {
    acknowledge(
      grantee,
      "IAM5",
      "workers create their control queues at run time, named after themselves: only the name prefix is known",
      [nagResource(this, this.controlQueueArns(prefix))],
    );
  }

  /** The workers' own control queues, which they create at run time: only a name pattern can scope them. */
  private controlQueueArns(prefix: string): string {
    return Stack.of(this).formatArn({ service: "sqs", resource: `${prefix}-w-*` });
  }
}
