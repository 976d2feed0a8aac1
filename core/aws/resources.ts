/**
 * Creates the run's shared resources directly through the SDK, for a local run against an emulator: the same
 * set the deployed stack has (control topic, TOC queue with its dead-letter queue, report queue), with the same
 * settings. CreateQueue and CreateTopic are idempotent, so this also finds resources that exist already.
 */
import { CreateTopicCommand } from "@aws-sdk/client-sns";
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { AwsCallError } from "../errors.ts";
import type { AwsClients } from "./clients.ts";

export interface QueueSettings {
  /** How long a TOC batch stays hidden once received; workers extend it while they work on a batch. */
  readonly tocVisibilityTimeoutSec: number;
  /** Deliveries of one TOC batch without a result before it goes to the dead-letter queue. */
  readonly maxReceiveCount: number;
}

export interface RunResources {
  readonly topicArn: string;
  readonly tocQueueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly reportQueueUrl: string;
}

export async function ensureRunResources(
  clients: AwsClients,
  namePrefix: string,
  settings: QueueSettings,
): Promise<RunResources> {
  const queue = async (name: string, attributes: Record<string, string>) => {
    try {
      const out = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      return out.QueueUrl ?? "";
    } catch (err) {
      throw new AwsCallError("CreateQueue", name, { cause: err });
    }
  };
  const topic = async (name: string) => {
    try {
      return (await clients.sns.send(new CreateTopicCommand({ Name: name }))).TopicArn ?? "";
    } catch (err) {
      throw new AwsCallError("CreateTopic", name, { cause: err });
    }
  };
  // The TOC queue needs its dead-letter queue's ARN; the report queue and the topic are made meanwhile.
  const tocQueues = async () => {
    const deadLetterQueueUrl = await queue(`${namePrefix}-toc-dlq`, { MessageRetentionPeriod: "1209600" });
    const dlqArn = (
      await clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ["QueueArn"] }),
      )
    ).Attributes?.QueueArn;
    const tocQueueUrl = await queue(`${namePrefix}-toc`, {
      VisibilityTimeout: String(settings.tocVisibilityTimeoutSec),
      MessageRetentionPeriod: "1209600",
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlqArn,
        maxReceiveCount: settings.maxReceiveCount,
      }),
    });
    return { deadLetterQueueUrl, tocQueueUrl };
  };
  const [{ deadLetterQueueUrl, tocQueueUrl }, reportQueueUrl, topicArn] = await Promise.all([
    tocQueues(),
    queue(`${namePrefix}-reports`, { MessageRetentionPeriod: "1209600" }),
    topic(`${namePrefix}-control`),
  ]);
  return { topicArn, tocQueueUrl, deadLetterQueueUrl, reportQueueUrl };
}
