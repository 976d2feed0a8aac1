/**
 * The stack's settings, read from CDK context (`cdk deploy -c key=value` or `cdk.json`) by one pure function that
 * checks them all before any construct is built. An error names the context key, shows the value and says what
 * is allowed, like aws-cdk's own prop validation.
 */

/** Every context key the stack reads, with its default and what it means (the README lists the same). */
export const CONTEXT_KEYS = {
  targetBucket:
    "name of the target bucket; with createBucket=false it must exist (it is imported and never deleted)",
  createBucket: "true: create the target bucket (named targetBucket, or by CloudFormation when unset)",
  kmsKeyArn:
    "SSE-KMS for the target: a KMS key's ARN to use, or create for a new key of the stack; the workers get GenerateDataKey and Decrypt on it and a created bucket encrypts with it by default (bucket keys on); unset: S3-managed keys",
  targetPrefix: "key prefix inside the bucket that the workers write under ('' = the bucket root)",
  sourceNfs: "the NFS or EFS export the workers read (mounted read-only with NFS 4.1), as host:/path",
  sourceMount: "where the source is mounted on a worker",
  targetMount: "where yas3fs mounts the bucket on a worker",
  instanceType: "the workers' EC2 instance type",
  volumeGiB: "each worker's encrypted root volume (holds yas3fs's disk cache)",
  yas3fsCacheMiB: "yas3fs's disk cache limit on each worker",
  yas3fsTopicArn: "an SNS topic for yas3fs cache invalidation between nodes (unset: none)",
  yas3fsRef: "the yas3fs git commit, tag or branch to install",
  workerConcurrency: "entries each worker copies at once",
  copier: "fs or rsync (the worker's --copier)",
  controlQueuePrefix: "name prefix of the workers' own control queues",
  vpcId: "run the workers in this existing VPC (looked up at synth; needs credentials); unset: a new VPC",
  allowDelete:
    "true: the master's policy may delete objects under targetPrefix (what `master --delete` removes); false: no delete",
} as const;

export type ContextKey = keyof typeof CONTEXT_KEYS;

export interface LoaderContext {
  readonly targetBucket: string | undefined;
  readonly createBucket: boolean;
  /** `create`, a key ARN, or undefined (S3-managed encryption). */
  readonly kmsKeyArn: string | undefined;
  readonly targetPrefix: string;
  readonly sourceNfs: string;
  readonly sourceMount: string;
  readonly targetMount: string;
  readonly instanceType: string;
  readonly volumeGiB: number;
  readonly yas3fsCacheMiB: number;
  readonly yas3fsTopicArn: string | undefined;
  readonly yas3fsRef: string;
  readonly workerConcurrency: number;
  readonly copier: "fs" | "rsync";
  readonly controlQueuePrefix: string;
  readonly vpcId: string | undefined;
  readonly allowDelete: boolean;
}

/** Used when a key is not given. `sourceNfs` has a placeholder so that `cdk synth` works with no context. */
export const CONTEXT_DEFAULTS: LoaderContext = {
  targetBucket: undefined,
  createBucket: true,
  kmsKeyArn: undefined,
  targetPrefix: "",
  sourceNfs: "nfs.example.internal:/export",
  sourceMount: "/mnt/source",
  targetMount: "/mnt/s3",
  instanceType: "c6i.large",
  volumeGiB: 100,
  yas3fsCacheMiB: 50_000,
  yas3fsTopicArn: undefined,
  yas3fsRef: "5bbf829",
  workerConcurrency: 16,
  copier: "fs",
  controlQueuePrefix: "s3bl",
  vpcId: undefined,
  allowDelete: false,
};

/** Thrown for a context value the stack cannot use. */
export class ContextError extends Error {
  override readonly name = "ContextError";
}

/**
 * Reads and checks every context value. `get` is `node.tryGetContext`; values from the command line arrive as
 * strings, values from `cdk.json` keep their JSON type, so both are accepted.
 */
export function parseLoaderContext(get: (key: string) => unknown): LoaderContext {
  const problems: string[] = [];
  const read = <T>(key: ContextKey, parse: (raw: unknown) => T | Invalid, fallback: T): T => {
    const raw = get(key);
    if (raw === undefined || raw === null || raw === "") return fallback;
    const out = parse(raw);
    if (out instanceof Invalid) {
      problems.push(`context ${key}: got ${JSON.stringify(raw)}; expected ${out.allowed}`);
      return fallback;
    }
    return out;
  };
  const d = CONTEXT_DEFAULTS;

  const targetBucket = read<string | undefined>("targetBucket", bucketName, d.targetBucket);
  const createBucket = read("createBucket", bool, d.createBucket);
  if (!createBucket && targetBucket === undefined) {
    problems.push(
      "context createBucket: got false without a targetBucket; give -c targetBucket=NAME to import a bucket, or leave createBucket=true",
    );
  }
  const ctx: LoaderContext = {
    targetBucket,
    createBucket,
    kmsKeyArn: read<string | undefined>(
      "kmsKeyArn",
      pattern(
        /^(create|arn:aws[\w-]*:kms:[\w-]+:\d{12}:key\/[\w-]+)$/,
        "create, or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID; not an alias: VALIDATE compares the key)",
      ),
      d.kmsKeyArn,
    ),
    targetPrefix: read(
      "targetPrefix",
      pattern(/^[\w!.*'()/-]{0,200}$/, "a key prefix such as loads/2024 (no leading /)"),
      d.targetPrefix,
    ).replace(/\/+$/, ""),
    sourceNfs: read("sourceNfs", nfsExport, d.sourceNfs),
    sourceMount: read("sourceMount", absolutePath, d.sourceMount),
    targetMount: read("targetMount", absolutePath, d.targetMount),
    instanceType: read("instanceType", instanceType, d.instanceType),
    volumeGiB: read("volumeGiB", integer(8, 16_384), d.volumeGiB),
    yas3fsCacheMiB: read("yas3fsCacheMiB", integer(100, 10_000_000), d.yas3fsCacheMiB),
    yas3fsTopicArn: read<string | undefined>(
      "yas3fsTopicArn",
      pattern(
        /^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]{1,256}$/,
        "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
      ),
      d.yas3fsTopicArn,
    ),
    yas3fsRef: read("yas3fsRef", pattern(/^[\w.-]{1,64}$/, "a git commit, tag or branch name"), d.yas3fsRef),
    workerConcurrency: read("workerConcurrency", integer(1, 1024), d.workerConcurrency),
    copier: read<"fs" | "rsync">(
      "copier",
      (v) => (v === "fs" || v === "rsync" ? v : new Invalid("fs or rsync")),
      d.copier,
    ),
    controlQueuePrefix: read(
      "controlQueuePrefix",
      pattern(/^[\w-]{1,30}$/, "1-30 letters, digits, '_' or '-'"),
      d.controlQueuePrefix,
    ),
    vpcId: read<string | undefined>(
      "vpcId",
      pattern(/^vpc-[0-9a-f]{8,17}$/, "a VPC id such as vpc-0123456789abcdef0"),
      d.vpcId,
    ),
    allowDelete: read("allowDelete", bool, d.allowDelete),
  };
  if (ctx.sourceMount === ctx.targetMount) {
    problems.push(
      `context targetMount: got ${JSON.stringify(ctx.targetMount)}; expected a path other than sourceMount`,
    );
  }
  if (problems.length > 0) throw new ContextError(`invalid context:\n  ${problems.join("\n  ")}`);
  return ctx;
}

/** What a parser returns for a value it refuses: what would have been allowed. */
class Invalid {
  constructor(readonly allowed: string) {}
}

function bool(v: unknown): boolean | Invalid {
  if (typeof v === "boolean") return v;
  const s = String(v).toLowerCase();
  return s === "true" ? true : s === "false" ? false : new Invalid("true or false");
}

function integer(min: number, max: number) {
  return (v: unknown): number | Invalid => {
    const n = typeof v === "number" ? v : Number(String(v));
    return Number.isInteger(n) && n >= min && n <= max ? n : new Invalid(`an integer from ${min} to ${max}`);
  };
}

function pattern(re: RegExp, what: string) {
  return (v: unknown): string | Invalid => (typeof v === "string" && re.test(v) ? v : new Invalid(what));
}

function bucketName(v: unknown): string | Invalid {
  const ok =
    typeof v === "string" &&
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v) &&
    !v.includes("..") &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(v);
  return ok ? (v as string) : new Invalid("an S3 bucket name (3-63 lowercase letters, digits, '.' or '-')");
}

function absolutePath(v: unknown): string | Invalid {
  return typeof v === "string" && /^\/[\w./-]*$/.test(v) && !v.split("/").includes("..") && v !== "/"
    ? v.replace(/\/+$/, "")
    : new Invalid("an absolute directory path such as /mnt/source (letters, digits, '.', '_', '-', '/')");
}

function nfsExport(v: unknown): string | Invalid {
  return typeof v === "string" && /^[A-Za-z0-9][\w.-]*:\/[\w./-]*$/.test(v)
    ? v
    : new Invalid(
        "an NFS export as host:/path, e.g. fs-0123456789abcdef0.efs.us-east-1.amazonaws.com:/ or 10.0.0.5:/export",
      );
}

function instanceType(v: unknown): string | Invalid {
  return typeof v === "string" && /^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(v)
    ? v
    : new Invalid("an EC2 instance type such as c6i.large");
}
