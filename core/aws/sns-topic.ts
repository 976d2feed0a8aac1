import { PublishCommand, type SNSClient, SubscribeCommand, UnsubscribeCommand } from "@aws-sdk/client-sns";
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { AwsCallError } from "../errors.ts";
import type { ControlSubscription, Subscriptions, Topic } from "../ports.ts";
import { withRetry } from "../retry.ts";
import { SqsQueue } from "./sqs-queue.ts";

/** The control topic on SNS. */
export class SnsTopic implements Topic {
  constructor(
    private readonly client: SNSClient,
    readonly arn: string,
  ) {}

  async publish(body: string, signal?: AbortSignal): Promise<void> {
    try {
      await withRetry(
        () =>
          this.client.send(new PublishCommand({ TopicArn: this.arn, Message: body }), {
            abortSignal: signal,
          }),
        { signal },
      );
    } catch (err) {
      throw new AwsCallError("Publish", this.arn, { cause: err });
    }
  }
}

/**
 * Each worker's control queue: an SQS queue subscribed to the topic with raw delivery (the body is our
 * message, no SNS envelope), with the queue policy that lets this topic, and only it, send to the queue.
 */
export class SqsTopicSubscriptions implements Subscriptions {
  constructor(
    private readonly sqs: SQSClient,
    private readonly sns: SNSClient,
    private readonly topicArn: string,
  ) {}

  async open(queueName: string, signal?: AbortSignal): Promise<ControlSubscription> {
    const opts = { abortSignal: signal };
    try {
      const created = await this.sqs.send(
        new CreateQueueCommand({
          QueueName: queueName,
          // SSE-SQS, whatever the account's default: SNS delivers to it with no key grant (see lib/messaging.ts).
          Attributes: {
            MessageRetentionPeriod: "3600",
            ReceiveMessageWaitTimeSeconds: "20",
            SqsManagedSseEnabled: "true",
          },
        }),
        opts,
      );
      const url = created.QueueUrl ?? "";
      const attrs = await this.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
        opts,
      );
      const queueArn = attrs.Attributes?.QueueArn ?? "";
      const policy = {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "sns.amazonaws.com" },
            Action: "sqs:SendMessage",
            Resource: queueArn,
            Condition: { ArnEquals: { "aws:SourceArn": this.topicArn } },
          },
        ],
      };
      await this.sqs.send(
        new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: JSON.stringify(policy) } }),
        opts,
      );
      const sub = await this.sns.send(
        new SubscribeCommand({
          TopicArn: this.topicArn,
          Protocol: "sqs",
          Endpoint: queueArn,
          Attributes: { RawMessageDelivery: "true" },
          ReturnSubscriptionArn: true,
        }),
        opts,
      );
      return { queue: new SqsQueue(this.sqs, url), subscriptionArn: sub.SubscriptionArn ?? "" };
    } catch (err) {
      throw new AwsCallError("open control queue", queueName, { cause: err });
    }
  }

  async close(queueUrl: string, subscriptionArn: string, signal?: AbortSignal): Promise<void> {
    const opts = { abortSignal: signal };
    const gone = (err: unknown) =>
      /NotFound|NonExistent|does not exist/i.test(
        String((err as Error)?.name) + String((err as Error)?.message),
      );
    if (subscriptionArn) {
      try {
        await this.sns.send(new UnsubscribeCommand({ SubscriptionArn: subscriptionArn }), opts);
      } catch (err) {
        if (!gone(err)) throw new AwsCallError("Unsubscribe", subscriptionArn, { cause: err });
      }
    }
    try {
      await this.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }), opts);
    } catch (err) {
      if (!gone(err)) throw new AwsCallError("DeleteQueue", queueUrl, { cause: err });
    }
  }
}
