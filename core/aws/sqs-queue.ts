import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { AwsCallError } from "../errors.ts";
import type { MessageQueue, ReceivedMessage, ReceiveOptions } from "../ports.ts";
import { withRetry } from "../retry.ts";

/** `MessageQueue` on SQS: batches of 10 for send, delete and visibility changes; partial failures retried. */
export class SqsQueue implements MessageQueue {
  private count = 0;
  constructor(
    private readonly client: SQSClient,
    readonly url: string,
  ) {}

  get requests(): number {
    return this.count;
  }

  async send(bodies: readonly string[], signal?: AbortSignal): Promise<void> {
    for (const group of sendGroups(bodies)) {
      const chunk = group.map((MessageBody, n) => ({ Id: String(n), MessageBody }));
      await this.batch("SendMessageBatch", chunk, signal, (entries) =>
        this.client.send(new SendMessageBatchCommand({ QueueUrl: this.url, Entries: entries }), {
          abortSignal: signal,
        }),
      );
    }
  }

  async receive(opts: ReceiveOptions, signal?: AbortSignal): Promise<ReceivedMessage[]> {
    this.count++;
    try {
      const out = await this.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.url,
          MaxNumberOfMessages: Math.max(1, Math.min(10, opts.max)),
          WaitTimeSeconds: opts.waitSec,
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
        { abortSignal: signal },
      );
      return (out.Messages ?? []).map((m) => ({
        id: m.MessageId ?? "",
        body: m.Body ?? "",
        receipt: m.ReceiptHandle ?? "",
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? "1"),
      }));
    } catch (err) {
      throw new AwsCallError("ReceiveMessage", this.url, { cause: err });
    }
  }

  async delete(receipts: readonly string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < receipts.length; i += 10) {
      const chunk = receipts.slice(i, i + 10).map((ReceiptHandle, n) => ({ Id: String(n), ReceiptHandle }));
      await this.batch("DeleteMessageBatch", chunk, signal, (entries) =>
        this.client.send(new DeleteMessageBatchCommand({ QueueUrl: this.url, Entries: entries }), {
          abortSignal: signal,
        }),
      );
    }
  }

  async extend(receipts: readonly string[], visibilitySec: number, signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < receipts.length; i += 10) {
      const chunk = receipts
        .slice(i, i + 10)
        .map((ReceiptHandle, n) => ({ Id: String(n), ReceiptHandle, VisibilityTimeout: visibilitySec }));
      await this.batch("ChangeMessageVisibilityBatch", chunk, signal, (entries) =>
        this.client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.url, Entries: entries }), {
          abortSignal: signal,
        }),
      );
    }
  }

  async purge(signal?: AbortSignal): Promise<void> {
    this.count++;
    try {
      await this.client.send(new PurgeQueueCommand({ QueueUrl: this.url }), { abortSignal: signal });
    } catch (err) {
      throw new AwsCallError("PurgeQueue", this.url, { cause: err });
    }
  }

  async visibilityTimeoutSec(signal?: AbortSignal): Promise<number> {
    this.count++;
    const out = await this.client.send(
      new GetQueueAttributesCommand({ QueueUrl: this.url, AttributeNames: ["VisibilityTimeout"] }),
      { abortSignal: signal },
    );
    return Number(out.Attributes?.VisibilityTimeout ?? "30");
  }

  /**
   * The URL of this queue's dead-letter queue, from its RedrivePolicy (`deadLetterTargetArn`, an ARN
   * `arn:aws:sqs:region:account:name`, turned into a URL by GetQueueUrl); null when it has no RedrivePolicy.
   */
  async deadLetterQueueUrl(signal?: AbortSignal): Promise<string | null> {
    let operation = "GetQueueAttributes";
    try {
      const attributes = await withRetry(
        () => {
          this.count++;
          return this.client.send(
            new GetQueueAttributesCommand({ QueueUrl: this.url, AttributeNames: ["RedrivePolicy"] }),
            { abortSignal: signal },
          );
        },
        { signal },
      );
      const policy = attributes.Attributes?.RedrivePolicy;
      if (!policy) return null;
      const arn: unknown = (JSON.parse(policy) as { deadLetterTargetArn?: unknown }).deadLetterTargetArn;
      const parts = typeof arn === "string" ? arn.split(":") : [];
      const [account, name] = [parts[4], parts[5]];
      if (parts.length !== 6 || parts[2] !== "sqs" || !account || !name) {
        throw new Error(`the RedrivePolicy names no queue ARN as its deadLetterTargetArn: ${policy}`);
      }
      operation = "GetQueueUrl";
      const out = await withRetry(
        () => {
          this.count++;
          return this.client.send(
            new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }),
            {
              abortSignal: signal,
            },
          );
        },
        { signal },
      );
      if (!out.QueueUrl) throw new Error(`no URL for the queue ${arn}`);
      return out.QueueUrl;
    } catch (err) {
      throw new AwsCallError(operation, this.url, { cause: err });
    }
  }

  /** Runs a batch call, then retries the entries the service refused (with the shared retry policy). */
  private async batch<E extends { Id: string }>(
    operation: string,
    entries: E[],
    signal: AbortSignal | undefined,
    call: (
      entries: E[],
    ) => Promise<{ Failed?: { Id?: string; Code?: string; Message?: string; SenderFault?: boolean }[] }>,
  ): Promise<void> {
    let pending = entries;
    try {
      await withRetry(
        async () => {
          this.count++;
          const out = await call(pending);
          const failed = out.Failed ?? [];
          if (failed.length === 0) return;
          const ids = new Set(failed.map((f) => f.Id));
          pending = pending.filter((e) => ids.has(e.Id));
          const first = failed[0];
          const err = new Error(`${failed.length} of the batch refused: ${first?.Code}: ${first?.Message}`);
          // Sender faults (e.g. an expired receipt handle) will not succeed on a retry.
          (err as { $retryable?: boolean }).$retryable = failed.some((f) => !f.SenderFault);
          throw err;
        },
        { signal },
      );
    } catch (err) {
      throw new AwsCallError(operation, this.url, { cause: err });
    }
  }
}

/** SendMessageBatch takes at most 10 messages and 256 KiB in all: groups bodies within both limits. */
export function sendGroups(bodies: readonly string[], maxBytes = 256 * 1024): string[][] {
  const groups: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const b of bodies) {
    const n = Buffer.byteLength(b);
    if (cur.length > 0 && (cur.length === 10 || bytes + n > maxBytes)) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(b);
    bytes += n;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/**
 * The queue does not exist (any more): deleted, e.g. a worker's control queue that the master removed when it
 * declared the worker lost. Looks through `cause` (our errors wrap the SDK's).
 */
export function isQueueGone(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { Code?: string; code?: string }).Code ?? (e as { code?: string }).code ?? "";
    if (
      /QueueDoesNotExist|NonExistentQueue/.test(`${e.name} ${code}`) ||
      /queue does not exist/i.test(e.message)
    )
      return true;
  }
  return false;
}
