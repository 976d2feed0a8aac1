import { CfnOutput, Duration, RemovalPolicy } from "aws-cdk-lib";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

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

    new CfnOutput(this, "ControlTopicArn", { value: this.controlTopic.topicArn });
    new CfnOutput(this, "TocQueueUrl", { value: this.tocQueue.queueUrl });
    new CfnOutput(this, "DeadLetterQueueUrl", { value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, "ReportQueueUrl", { value: this.reportQueue.queueUrl });
  }
}
