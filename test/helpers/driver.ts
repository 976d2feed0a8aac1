/** One real worker process, with the test in the master's seat over the real topic and queues. */
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { ensureRunResources, type RunResources } from "../../core/aws/resources.ts";
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
  readonly resources: RunResources;
  /** Every report of this run read so far. */
  readonly received: readonly Message[];
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
  /**
   * The whole result of a batch, once every part of one delivery has come (parts joined in order; `part`
   * left out), and how many messages it took.
   */
  fullResult(batch: number, timeoutMs?: number): Promise<{ result: BatchResult; parts: number }>;
  /** TOC messages waiting and in flight (what the queue's attributes say). */
  tocCounts(): Promise<{ visible: number; inFlight: number }>;
}

export async function driveWorker(
  aws: TestAws,
  o: {
    name: string;
    runId: string;
    source: string;
    target: string;
    args?: string[];
    /** Defaults to NAME-1. */
    workerId?: string;
    /** The endpoint the worker uses (e.g. an outage proxy in front of the emulator). */
    endpoint?: string;
    /** Extra environment for the worker (overrides). */
    env?: Record<string, string>;
    /** Run the worker as this user. */
    as?: { uid?: number; gid?: number };
    maxReceiveCount?: number;
  },
): Promise<DrivenWorker> {
  const r = await ensureRunResources(aws.clients, o.name, {
    tocVisibilityTimeoutSec: 30,
    maxReceiveCount: o.maxReceiveCount ?? 5,
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
      o.workerId ?? `${o.name}-1`,
      "--report-ms",
      "100",
      "--heartbeat-ms",
      "500",
      ...(o.args ?? []),
    ],
    {
      env: {
        AWS_ENDPOINT_URL: o.endpoint ?? aws.emulator.url,
        S3BL_TOPIC_ARN: r.topicArn,
        S3BL_TOC_QUEUE_URL: r.tocQueueUrl,
        S3BL_REPORT_QUEUE_URL: r.reportQueueUrl,
        ...o.env,
      },
      ...(o.as ?? {}),
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
          accept: ["WORKER_STATE", "SUMMARY", "HOOK", "ERROR_REPORT"],
        });
        if (d.ok) received.push(d.message);
      }
      if (ms.length) await reports.delete(ms.map((m) => m.receipt));
    }
  };
  const fullResult = async (batch: number, timeoutMs = 30_000) => {
    let whole: { result: BatchResult; parts: number } | undefined;
    await waitReport(() => {
      const pieces = received.flatMap((m) =>
        m.type === "SUMMARY"
          ? m.batches.filter((b) => b.batch === batch).map((b) => ({ b, w: m.worker }))
          : [],
      );
      for (const { b, w } of pieces) {
        if (!b.part) {
          whole = { result: b, parts: 1 };
          return true;
        }
        const mine = pieces.filter((p) => p.w === w && p.b.receiveCount === b.receiveCount && p.b.part);
        const byIndex = new Map(mine.map((p) => [p.b.part?.index, p.b]));
        if (byIndex.size !== b.part.of) continue;
        const ordered = [...byIndex.entries()].sort((x, y) => Number(x[0]) - Number(y[0])).map((x) => x[1]);
        const { part: _part, ...rest } = b;
        whole = {
          result: {
            ...rest,
            errors: ordered.flatMap((p) => p.errors),
            skips: ordered.flatMap((p) => p.skips),
          },
          parts: b.part.of,
        };
        return true;
      }
      return false;
    }, timeoutMs);
    if (!whole) throw new Error("unreachable");
    return whole;
  };
  return {
    proc,
    runId: o.runId,
    resources: r,
    received,
    fullResult,
    async tocCounts() {
      const out = await aws.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: r.tocQueueUrl,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        }),
      );
      return {
        visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? "0"),
        inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? "0"),
      };
    },
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
