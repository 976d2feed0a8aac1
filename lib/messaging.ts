import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
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
 * (master → workers), and the report queue (workers → master). All encrypted and TLS-only.
 */
export class Messaging extends Construct {
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
    this.controlTopic = new sns.Topic(this, "ControlTopic", { enforceSSL: true });
    acknowledge(
      this.reportQueue,
      "SQS3",
      "the master deletes every report it receives and counts an unreadable one as a protocol error: nothing would ever be redriven",
    );
  }

  /**
   * What a worker does on the channels: take TOC batches, report to the master, and own a control queue named
   * `<prefix>-w-<workerId>` that it creates, subscribes to the topic (with a queue policy for the topic),
   * receives from, and deletes with its subscription at exit.
   */
  grantWorker(grantee: iam.IGrantable, controlQueuePrefix: string): void {
    this.tocQueue.grantConsumeMessages(grantee);
    this.reportQueue.grantSendMessages(grantee);
    this.controlTopic.grantSubscribe(grantee);
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
   * What the master does on the channels: broadcast on the topic; send, read back, purge the TOC queue; read the
   * report and dead-letter queues; remove the control queue and subscription of a worker that vanished.
   */
  grantMaster(grantee: iam.IGrantable, controlQueuePrefix: string): void {
    this.controlTopic.grantPublish(grantee);
    for (const queue of [this.tocQueue, this.reportQueue, this.deadLetterQueue]) {
      queue.grantSendMessages(grantee);
      queue.grantConsumeMessages(grantee);
      queue.grantPurge(grantee);
    }
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
