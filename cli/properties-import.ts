/**
 * `config import`: a configuration of the original Java tool (`s3BucketLoader.properties`) as ours. Every
 * property of the original has a rule here: the setting it becomes, or why it has none. Pure: text in, text
 * out (YAML, with a comment line for every property that was not carried over).
 */
import { stringify } from "yaml";

/** Java `Properties` text as a map (the last of a repeated key wins, as in Java). */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? "").replace(/^\s+/, "");
    if (line === "" || line.startsWith("#") || line.startsWith("!")) continue;
    // A line ending in an odd number of backslashes continues on the next one.
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) {
      i++;
      line = line.slice(0, -1) + (lines[i] ?? "").replace(/^\s+/, "");
    }
    const m = /^((?:\\.|[^\s=:\\])*)\s*[=:\s]?\s*(.*)$/s.exec(line);
    if (!m) continue;
    out.set(unescapeJava(m[1] ?? ""), unescapeJava(m[2] ?? ""));
  }
  return out;
}

function unescapeJava(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) =>
    c.length === 5
      ? String.fromCharCode(Number.parseInt(c.slice(1), 16))
      : (({ t: "\t", n: "\n", r: "\r", f: "\f" } as Record<string, string>)[c] ?? c),
  );
}

/** A property carried over: our setting's name and value, and a note when the meaning shifts. */
interface Carried {
  readonly set: Record<string, unknown>;
  readonly note?: string;
}
/** A property without an equivalent: why not, and what to do instead. */
interface Dropped {
  readonly why: string;
}
type Rule = (value: string, all: ReadonlyMap<string, string>) => Carried | Dropped;

const drop =
  (why: string): Rule =>
  () => ({ why });
const secret =
  (why: string): Rule =>
  () => ({ why: `${why} (value not copied)` });
const int = (v: string) => (/^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim());
const bool = (v: string) => v.trim().toLowerCase() === "true";
const s3 = (bucket: string) => `s3://${bucket.trim()}`;

const CRAWLER = "org.bitsofinfo.s3.toc.DirectoryCrawler";
const MANIFEST = "org.bitsofinfo.s3.toc.TOCManifestBasedGenerator";
const LISTER = "org.bitsofinfo.s3.toc.S3BucketObjectLister";
const FILE_COPY = "org.bitsofinfo.s3.toc.FileCopyTOCPayloadHandler";
const KEY_COPY = "org.bitsofinfo.s3.toc.S3KeyCopyingTOCPayloadHandler";

const HOOKS =
  "the worker's boot script runs the mounts and hooks (ExecStartPre, before-validate.sh, ExecStopPost; lib/user-data.ts)";
const MONITORS =
  "no yas3fs log monitors: an s3:// target writes the objects directly, and S3 requests are limited adaptively";
const LAUNCH_TEMPLATE =
  "the stack's launch template sets it (AMI, disk, network, user data); launch with --launch";

/** Every property of the original tool, by name (see the reference of its configuration). */
export const PROPERTY_RULES: Readonly<Record<string, Rule>> = {
  "aws.sns.control.topic.name": drop(
    "we take the topic's ARN, not a name prefix: topicArn, or --stack NAME reads it from the deployed stack",
  ),
  "aws.sqs.queue.name": drop(
    "we take the queue's URL, not a name prefix: tocQueueUrl (and reportQueueUrl), or --stack NAME",
  ),
  "aws.access.key": secret(
    "credentials come from the SDK's chain (AWS_PROFILE, SSO, instance role), never a file",
  ),
  "aws.secret.key": secret(
    "credentials come from the SDK's chain (AWS_PROFILE, SSO, instance role), never a file",
  ),
  "aws.account.principal.id": drop("the original read it and never used it"),
  "aws.user.arn": drop("attach the stack's output MasterPolicyArn to that user or role instead"),
  "master.workers.total": (v) => ({ set: { workers: int(v) } }),
  "master.tocqueue.dispatch.threads": drop(
    "the master sends batches of up to 500 entries ten at a time (SendMessageBatch): no threads to set",
  ),
  "master.failfast.on.worker.current.summary.error": (v) => ({ set: { failfast: bool(v) } }),
  "master.auto.shutdown.after.n.minutes": drop(
    "the master exits by itself when the run ends, whatever the outcome",
  ),
  "master.s3.log.bucket": drop(
    "workers upload their logs to the stack's logs bucket (output LogsBucketName) at shutdown",
  ),
  "master.s3.log.worker.files": drop("workers upload their journal and the yas3fs log; no list to give"),
  "master.s3.log.master.files": drop("the master's log is its standard error; keep it with your shell"),
  "master.workers.error.report.logfile": (v) => ({
    set: { report: v.trim() },
    note: "our report is the whole run's (every entry, worker, phase), not only the errors",
  }),
  "master.source.host.ec2.instanceId": drop(
    "the source is an NFS/EFS export the workers mount (cdk context sourceNfs); start its host yourself",
  ),
  "master.source.host.ec2.stopOnMasterShutdown": drop("the master does not manage the source's host"),
  "master.source.host.post.start.cmd": drop("the master does not manage the source's host"),
  "master.source.host.pre.stop.cmd": drop("the master does not manage the source's host"),
  "master.workers.ec2.managed": (v) => ({ set: { launch: bool(v) } }),
  "master.workers.ec2.minutes.to.wait.for.worker.init": (v) => {
    const n = int(v);
    return { set: { initTimeoutSec: typeof n === "number" ? n * 60 : v } };
  },
  "master.workers.ec2.ami.id": drop(`${LAUNCH_TEMPLATE}: Amazon Linux 2023`),
  "master.workers.ec2.instanceType": drop(
    "the instance type is the stack's: npx cdk deploy -c instanceType=TYPE (plan takes --instance-type)",
  ),
  "master.workers.ec2.disk.deviceName": drop(LAUNCH_TEMPLATE),
  "master.workers.ec2.disk.volumeType": drop(`${LAUNCH_TEMPLATE}: an encrypted gp3 volume`),
  "master.workers.ec2.disk.size.gigabytes": drop(
    "the volume size is the stack's: npx cdk deploy -c volumeGiB=N",
  ),
  "master.workers.ec2.keyName": drop("no SSH: a shell on a worker is through Session Manager"),
  "master.workers.ec2.securityGroupId": drop(`${LAUNCH_TEMPLATE}: output WorkerSecurityGroupId`),
  "master.workers.ec2.subnetId": (v) => ({ set: { subnetIds: v.trim() } }),
  "master.workers.ec2.shutdownBehavior": drop(`${LAUNCH_TEMPLATE}: shutdown terminates`),
  "master.workers.ec2.userDataFile": drop(
    `${LAUNCH_TEMPLATE}: the boot script is rendered by lib/user-data.ts`,
  ),
  "tocGenerator.class": (v, all) => {
    const c = v.trim();
    if (c === CRAWLER) return { set: {}, note: "the crawl is the default TOC source" };
    if (c === MANIFEST) return { set: {}, note: "a manifest: see manifest" };
    if (c === LISTER) {
      const bucket = all.get("tocGenerator.source.s3.bucketName");
      return bucket
        ? { set: { source: s3(bucket) }, note: "a bucket mirror: the source is the bucket" }
        : { why: "a bucket lister without tocGenerator.source.s3.bucketName" };
    }
    return { why: `unknown class ${c}` };
  },
  "tocGenerator.source.dir": (v, all) =>
    all.get("tocGenerator.class")?.trim() === LISTER
      ? { why: "the TOC is the source bucket's listing" }
      : { set: { source: v.trim() } },
  "tocGenerator.lastModifiedAtGreaterThanFilter": (v) => ({
    set: { modifiedAfter: v.trim() },
    note: "a date is midnight UTC here, the master's local midnight in the original",
  }),
  "tocGenerator.toc.manifest.file": (v, all) =>
    all.get("tocGenerator.class")?.trim() === MANIFEST
      ? { set: { manifest: v.trim() } }
      : { why: "tocGenerator.class is not the manifest generator, so the original ignored it" },
  "tocGenerator.source.s3.bucketName": (_v, all) =>
    all.get("tocGenerator.class")?.trim() === LISTER
      ? { set: {}, note: "see source" }
      : { why: "tocGenerator.class is not the bucket lister, so the original ignored it" },
  "worker.toc.consumer.threads.num": (v) => ({
    set: { concurrency: int(v) },
    note: "entries a worker works on at once (handlers, not threads)",
  }),
  "worker.toc.consumer.threads.min.requests.before.idle": drop(
    "phases end by counts of batches, not by idle workers",
  ),
  "worker.initialize.cmd": drop(HOOKS),
  "worker.initialize.cmd.env": drop(HOOKS),
  "worker.destroy.cmd": drop(HOOKS),
  "worker.destroy.cmd.env": drop(HOOKS),
  "worker.pre.validate.cmd": drop(HOOKS),
  "worker.pre.validate.cmd.env": drop(HOOKS),
  ...Object.fromEntries(
    [
      "worker.write.backoff.monitor.class",
      "worker.write.backoff.monitor.yas3fs.backoffWhenMultipartUploads",
      "worker.write.backoff.monitor.yas3fs.backoffWhenTotalHTTPSConns",
      "worker.write.backoff.monitor.yas3fs.backoffWhenTotalS3Uploads",
      "worker.write.backoff.monitor.yas3fs.checkEveryMS",
      "worker.write.backoff.monitor.yas3fs.logFilePath",
      "worker.write.error.monitor.class",
      "worker.write.error.monitor.yas3fs.checkEveryMS",
      "worker.write.error.monitor.yas3fs.logFilePath",
      "worker.write.complete.monitor.class",
      "worker.write.complete.monitor.yas3fs.checkEveryMS",
      "worker.write.complete.monitor.yas3fs.logFilePath",
    ].map((k) => [k, drop(MONITORS)]),
  ),
  "tocPayloadHandler.write.class": (v) => {
    const c = v.trim();
    if (c === FILE_COPY) return { set: {}, note: "copying files is what workers do" };
    if (c === KEY_COPY) return { set: {}, note: "a bucket mirror: see source and target" };
    return { why: `unknown class ${c}` };
  },
  "tocPayloadHandler.source.dir.root": (v, all) => {
    const master = all.get("tocGenerator.source.dir")?.trim();
    return master && master !== v.trim()
      ? {
          why: `the worker's own path to the source; give --source ${v.trim()} to the workers (cdk context sourceMount)`,
        }
      : { set: { source: v.trim() } };
  },
  "tocPayloadHandler.target.dir.root": (v) => ({
    set: { target: v.trim() },
    note: "or s3://BUCKET/PREFIX to write the objects directly, in yas3fs's format",
  }),
  "tocPayloadHandler.write.retries": drop(
    "retries are the SDK's (throttling, 5xx, network) and SQS redelivery to another worker",
  ),
  "tocPayloadHandler.write.retries.sleep.ms": drop("retries back off by themselves"),
  "tocPayloadHandler.write.use.rsync": (v) => ({ set: { copier: bool(v) ? "rsync" : "fs" } }),
  "tocPayloadHandler.write.rsync.options": drop(
    "rsync runs as rsync -a --inplace --files-from, one process per batch; its options are not settable",
  ),
  "tocPayloadHandler.write.rsync.tolerable.error.regex": drop(
    "no error is tolerated silently: every failed entry is in the report with its reason",
  ),
  "tocPayloadHandler.write.post.success.validate.local.dir": drop(
    "VALIDATE checks every entry in the target itself, not in a cache",
  ),
  "tocPayloadHandler.write.post.success.validate.logfile": drop("errors are in the report"),
  "tocPayloadHandler.write.post.success.validate.skipDirectories": drop("VALIDATE checks directories too"),
  "tocPayloadHandler.write.chmod": drop("modes are kept from the source"),
  "tocPayloadHandler.write.chmod.dirsOnly": drop("modes are kept from the source"),
  "tocPayloadHandler.write.chown": drop("owners are kept from the source (workers run as root)"),
  "tocPayloadHandler.write.chown.dirsOnly": drop("owners are kept from the source (workers run as root)"),
  "tocPayloadHandler.write.s3keyCopy.sourceS3BucketName": (v) => ({ set: { source: s3(v) } }),
  "tocPayloadHandler.write.s3keyCopy.targetS3BucketName": (v) => ({ set: { target: s3(v) } }),
  "tocPayloadHandler.write.s3keyCopy.storageClass": drop(
    "objects are written in the bucket's default class (STANDARD); use a lifecycle rule to move them",
  ),
  "tocPayloadHandler.write.s3keyCopy.enableServerSideEncryption": drop(
    "the bucket's default encryption (SSE-S3 in the stack) applies to every object",
  ),
  "tocPayloadHandler.validate.class": drop("there is one validator"),
  "tocPayloadHandler.validate.mode": () => ({
    set: { validate: "attrs" },
    note: "VALIDATE checks the target the workers wrote: kind, size, mode, owner, mtime (and the checksum on S3)",
  }),
  "tocPayloadHandler.validate.s3.bucketName": (v, all) =>
    all.has("tocPayloadHandler.target.dir.root")
      ? { why: "VALIDATE checks the target itself; to check in S3, write there: target s3://BUCKET" }
      : { set: { target: s3(v) } },
};

export interface ImportResult {
  /** Our configuration, as YAML with a comment for every property not carried over. */
  readonly yaml: string;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly carried: readonly string[];
  readonly dropped: readonly { readonly property: string; readonly why: string }[];
}

/** The original's properties as our configuration file. */
export function importProperties(text: string, from = "s3BucketLoader.properties"): ImportResult {
  const props = parseProperties(text);
  const settings: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const notes: Record<string, string[]> = {};
  const carried: string[] = [];
  const dropped: { property: string; why: string }[] = [];
  for (const [key, value] of props) {
    const rule = PROPERTY_RULES[key];
    const r = rule ? rule(value, props) : { why: "not a property of the original tool (a typo?)" };
    if ("why" in r) {
      dropped.push({ property: key, why: r.why });
      continue;
    }
    carried.push(key);
    for (const [k, v] of Object.entries(r.set)) {
      if (k in settings && settings[k] !== v) {
        dropped.push({
          property: key,
          why: `${k} is already ${JSON.stringify(settings[k])} from ${origin[k]}`,
        });
        continue;
      }
      settings[k] = v;
      origin[k] = key;
      if (r.note) notes[k] = [...(notes[k] ?? []), r.note];
    }
  }
  const lines = [
    `# s3-bucket-loader configuration, imported from ${from}`,
    "# (flags and environment variables win over it)",
  ];
  for (const [k, v] of Object.entries(settings)) {
    lines.push(`# from ${origin[k]}${notes[k]?.length ? `: ${notes[k]?.join("; ")}` : ""}`);
    lines.push(stringify({ [k]: v }, { lineWidth: 0 }).trimEnd());
  }
  if (dropped.length > 0) {
    lines.push("", "# Not carried over:");
    for (const d of dropped) lines.push(`# ${d.property}: ${d.why}`);
  }
  return { yaml: `${lines.join("\n")}\n`, settings, carried, dropped };
}
