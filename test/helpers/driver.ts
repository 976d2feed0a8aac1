/** One real worker process, with the test in the master's seat over the real topic and queues. */
import { ensureRunResources } from "../../core/aws/resources.ts";
import { SnsTopic } from "../../core/aws/sns-topic.ts";
import { SqsQueue } from "../../core/aws/sqs-queue.ts";
import {
  type BatchResult,
  decodeMessage,
  encodeMessage,
  type Message,
  type MessageBody,
} from "../../core/messages.ts";
import type { TestAws } from "./aws.ts";
import { type Proc, startCli } from "./run.ts";

export interface DrivenWorker {
  readonly proc: Proc;
  readonly runId: string;
  /** Publishes a control message on the topic. */
  publish(body: MessageBody): Promise<void>;
  /** Sends raw bodies to the TOC queue. */
  sendToc(bodies: string[]): Promise<void>;
  /** Sends one TOC batch of this run. */
  sendBatch(batch: Extract<MessageBody, { type: "TOC_BATCH" }>): Promise<void>;
  /** Reads reports until one matches. */
  waitReport(pred: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  /** The result of a batch, once reported. */
  result(batch: number): Promise<BatchResult>;
}

export async function driveWorker(
  aws: TestAws,
  o: { name: string; runId: string; source: string; target: string; args?: string[] },
): Promise<DrivenWorker> {
  const r = await ensureRunResources(aws.clients, o.name, {
    tocVisibilityTimeoutSec: 30,
    maxReceiveCount: 5,
  });
  const reports = new SqsQueue(aws.clients.sqs, r.reportQueueUrl);
  const toc = new SqsQueue(aws.clients.sqs, r.tocQueueUrl);
  const topic = new SnsTopic(aws.clients.sns, r.topicArn);
  const received: Message[] = [];
  const proc = startCli(
    [
      "worker",
      "--source",
      o.source,
      "--target",
      o.target,
      "--run-id",
      o.runId,
      "--worker-id",
      `${o.name}-1`,
      "--report-ms",
      "100",
      "--heartbeat-ms",
      "500",
      ...(o.args ?? []),
    ],
    {
      env: {
        AWS_ENDPOINT_URL: aws.emulator.url,
        S3BL_TOPIC_ARN: r.topicArn,
        S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
        S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
      },
    },
  );
  const waitReport = async (pred: (m: Message) => boolean, timeoutMs = 30_000): Promise<Message> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = received.find(pred);
      if (hit) return hit;
      if (Date.now() > end)
        throw new Error(`no such report; the worker said:\n${proc.stderr().slice(-2000)}`);
      const ms = await reports.receive({ max: 10, waitSec: 1 });
      for (const m of ms) {
        const d = decodeMessage(m.body, {
          expectRun: o.runId,
          accept: ["WORKER_STATE", "SUMMARY", "ERROR_REPORT"],
        });
        if (d.ok) received.push(d.message);
      }
      if (ms.length) await reports.delete(ms.map((m) => m.receipt));
    }
  };
  return {
    proc,
    runId: o.runId,
    publish: (body) => topic.publish(encodeMessage(o.runId, body)),
    sendToc: (bodies) => toc.send(bodies),
    sendBatch: (batch) => toc.send([encodeMessage(o.runId, batch)]),
    waitReport,
    async result(batch) {
      const s = await waitReport((m) => m.type === "SUMMARY" && m.batches.some((b) => b.batch === batch));
      if (s.type !== "SUMMARY") throw new Error("unreachable");
      return s.batches.find((b) => b.batch === batch) as BatchResult;
    },
  };
}
