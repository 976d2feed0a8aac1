// The embedded emulator (fauxqs) on 127.0.0.1, plus a record of every SQS request (time, action, queue) so the
// benchmark can count the requests of all programs over a time window, not only the master's own.
// Usage: node [--import ../../local/sqlite-stub.mjs] counting-emulator.mjs
// Prints `EMULATOR_URL=http://127.0.0.1:PORT`; GET /_bench/sqs?from=MS&to=MS answers
// { total, byAction: {Action: n}, byQueue: {name: n} } for the requests received in [from, to].
import { buildApp } from "fauxqs";

/** @type {{ t: number, action: string, queue: string }[]} */
const sqs = [];
const app = buildApp({ logger: false });
app.addHook("preHandler", async (request) => {
  const target = request.headers["x-amz-target"];
  if (request.method !== "POST" || typeof target !== "string" || !target.startsWith("AmazonSQS.")) return;
  const body = /** @type {{ QueueUrl?: string } | undefined} */ (request.body);
  const queue = typeof body?.QueueUrl === "string" ? (body.QueueUrl.split("/").pop() ?? "") : "";
  sqs.push({ t: Date.now(), action: target.slice("AmazonSQS.".length), queue });
});
// rclone (a Go client) escapes the quotes of the ETags in CompleteMultipartUpload as `&#34;`, which fauxqs does
// not decode (it then answers InvalidPart). S3 decodes XML character references; so does this, for the peer.
app.addHook("preHandler", async (request) => {
  if (request.method !== "POST" || !request.url.includes("uploadId=") || !Buffer.isBuffer(request.body))
    return;
  const xml = request.body.toString("utf8").replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
  request.body = Buffer.from(xml);
});
app.get("/_bench/sqs", async (request) => {
  const q = /** @type {{ from?: string, to?: string }} */ (request.query);
  const from = Number(q.from ?? 0);
  const to = Number(q.to ?? Number.MAX_SAFE_INTEGER);
  const byAction = {};
  const byQueue = {};
  let total = 0;
  for (const r of sqs) {
    if (r.t < from || r.t > to) continue;
    total++;
    byAction[r.action] = (byAction[r.action] ?? 0) + 1;
    byQueue[r.queue] = (byQueue[r.queue] ?? 0) + 1;
  }
  return { total, byAction, byQueue };
});
const url = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(`EMULATOR_URL=${url}\n`);
const stop = () => app.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
