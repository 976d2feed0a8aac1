/**
 * What every write of a run asks of S3 besides the bytes: the storage class, server-side encryption, object
 * tags and "never overwrite". Pure: the settings in, the request headers and the checks out. The store
 * (core/aws/) sends the headers; the S3 target checks what a HEAD shows against what was asked.
 */
import { ConfigError } from "./errors.ts";

/** The classes a general-purpose bucket takes on PUT. */
export const STORAGE_CLASSES = [
  "STANDARD",
  "REDUCED_REDUNDANCY",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER_IR",
  "GLACIER",
  "DEEP_ARCHIVE",
] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Classes whose objects cannot be read without a restore first: yas3fs cannot open them. */
export const ARCHIVE_CLASSES: readonly StorageClass[] = ["GLACIER", "DEEP_ARCHIVE"];

/** Classes S3's API names that a general-purpose bucket refuses, with where they belong. */
export const OTHER_STORAGE_CLASSES: Readonly<Record<string, string>> = {
  EXPRESS_ONEZONE: "directory buckets (S3 Express One Zone)",
  OUTPOSTS: "S3 on Outposts buckets",
  SNOW: "Snow Family devices",
  FSX_OPENZFS: "FSx for OpenZFS access points",
  FSX_ONTAP: "FSx for NetApp ONTAP access points",
};

export const SSE_ALGORITHMS = ["AES256", "aws:kms"] as const;
export type SseAlgorithm = (typeof SSE_ALGORITHMS)[number];

export interface Encryption {
  readonly algorithm: SseAlgorithm;
  /** The KMS key's id or ARN (aws:kms only); none: the account's AWS managed key for S3 (aws/s3). */
  readonly kmsKeyId?: string | undefined;
}

export interface ObjectTag {
  readonly key: string;
  readonly value: string;
}

export interface WriteOptions {
  /** None: S3's default (STANDARD), no header sent. */
  readonly storageClass?: StorageClass | undefined;
  readonly encryption?: Encryption | undefined;
  readonly tags: readonly ObjectTag[];
  /** `If-None-Match: *` on every write: an object already there is never replaced. */
  readonly noOverwrite: boolean;
}

export const NO_WRITE_OPTIONS: WriteOptions = { tags: [], noOverwrite: false };

/** The tag `--tag-run-id` adds, whose value is the run's id. */
export const RUN_ID_TAG_KEY = "s3bl:run-id";

/** S3 keeps at most 10 tags on an object. */
export const MAX_TAGS = 10;

/** The settings the write options are made of, as the settings tables parse them. */
export interface WriteSettings {
  readonly storageClass?: StorageClass | undefined;
  readonly allowArchiveClasses: boolean;
  readonly sse?: SseAlgorithm | undefined;
  readonly sseKmsKeyId?: string | undefined;
  readonly tag: readonly string[];
  readonly tagRunId: boolean;
  readonly noOverwrite: boolean;
}

/**
 * The write options of a run, or a ConfigError naming every setting that does not fit with the others. The
 * run id is needed only for `--tag-run-id`.
 */
export function writeOptionsFrom(s: WriteSettings, runId?: string | undefined): WriteOptions {
  const problems: string[] = [];
  if (s.storageClass && ARCHIVE_CLASSES.includes(s.storageClass) && !s.allowArchiveClasses) {
    problems.push(
      `--storage-class ${s.storageClass}: yas3fs cannot read an object in ${s.storageClass} until it is restored (hours, and billed per GB); give --allow-archive-classes to load into it anyway, or choose GLACIER_IR, which reads at once`,
    );
  }
  if (s.sseKmsKeyId !== undefined && s.sse !== "aws:kms") {
    problems.push(
      `--sse-kms-key-id: got ${JSON.stringify(s.sseKmsKeyId)} with ${s.sse ? `--sse ${s.sse}` : "no --sse"}; a KMS key needs --sse aws:kms`,
    );
  }
  const tags: ObjectTag[] = [];
  for (const t of s.tag) {
    const parsed = parseTag(t);
    if (typeof parsed === "string") problems.push(`--tag: got ${JSON.stringify(t)}; ${parsed}`);
    else tags.push(parsed);
  }
  if (s.tagRunId) {
    if (!runId) problems.push("--tag-run-id: the run's id is not known here; give --run-id too");
    else tags.push({ key: RUN_ID_TAG_KEY, value: runId });
  }
  const keys = new Set<string>();
  for (const t of tags) {
    if (keys.has(t.key)) problems.push(`--tag: the key ${JSON.stringify(t.key)} is given twice`);
    keys.add(t.key);
  }
  if (tags.length > MAX_TAGS) {
    problems.push(`--tag: ${tags.length} tags; S3 keeps at most ${MAX_TAGS} on an object`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid settings:\n  ${problems.join("\n  ")}`);
  return {
    storageClass: s.storageClass,
    encryption: s.sse ? { algorithm: s.sse, kmsKeyId: s.sseKmsKeyId } : undefined,
    tags,
    noOverwrite: s.noOverwrite,
  };
}

/** Whether anything beyond S3's defaults is asked. */
export function asksAnything(o: WriteOptions): boolean {
  return o.storageClass !== undefined || o.encryption !== undefined || o.tags.length > 0 || o.noOverwrite;
}

// S3's rule for tags: letters, digits and spaces in UTF-8, and + - = . _ : / @; keys 1-128, values 0-256.
const TAG_TEXT = /^[\p{L}\p{N}\p{Zs}+\-=._:/@]*$/u;

/** `KEY=VALUE` as a tag, or why it cannot be one. */
export function parseTag(text: string): ObjectTag | string {
  const eq = text.indexOf("=");
  if (eq < 0) return "expected KEY=VALUE";
  const key = text.slice(0, eq);
  const value = text.slice(eq + 1);
  if (key.length < 1 || key.length > 128) return "a tag key has 1 to 128 characters";
  if (value.length > 256) return "a tag value has at most 256 characters";
  if (key.toLowerCase().startsWith("aws:")) return "tag keys starting with aws: are reserved for AWS";
  if (!TAG_TEXT.test(key) || !TAG_TEXT.test(value)) {
    return "tags may hold letters, digits, spaces and + - = . _ : / @ only";
  }
  return { key, value };
}

/** The key ids a `--sse-kms-key-id` may be: an id, or a key ARN (an alias cannot be checked in VALIDATE). */
export const KMS_KEY_ID =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[\w-]*:kms:[\w-]+:\d{12}:key\/[\w-]+)$/;

/** The `x-amz-tagging` value: the tags as a URL query. */
export function taggingOf(tags: readonly ObjectTag[]): string {
  return tags.map((t) => `${encodeURIComponent(t.key)}=${encodeURIComponent(t.value)}`).join("&");
}

/**
 * The headers of a PUT (and of CreateMultipartUpload, less If-None-Match, which goes on the completion).
 * Bucket keys are always on with SSE-KMS: S3 then asks KMS for a data key per bucket and a while, not per
 * object, which is what makes KMS affordable at millions of objects.
 */
export function writeHeaders(o: WriteOptions, forPut: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (o.storageClass) h["x-amz-storage-class"] = o.storageClass;
  if (o.encryption) {
    h["x-amz-server-side-encryption"] = o.encryption.algorithm;
    if (o.encryption.algorithm === "aws:kms") {
      h["x-amz-server-side-encryption-bucket-key-enabled"] = "true";
      if (o.encryption.kmsKeyId) h["x-amz-server-side-encryption-aws-kms-key-id"] = o.encryption.kmsKeyId;
    }
  }
  if (o.tags.length > 0) h["x-amz-tagging"] = taggingOf(o.tags);
  if (forPut && o.noOverwrite) h["if-none-match"] = "*";
  return h;
}

/** What a HEAD shows of how an object is stored. */
export interface StoredAs {
  /** None: STANDARD (S3 leaves the header out for it). */
  readonly storageClass: string | undefined;
  readonly encryption: string | undefined;
  readonly kmsKeyId: string | undefined;
}

/**
 * Why an object is not stored as asked (class, encryption, KMS key), or nothing. Only what was asked is
 * compared: without `--sse`, the bucket's default encryption is whatever it is.
 */
export function storedAsProblems(o: WriteOptions, head: StoredAs): string[] {
  const problems: string[] = [];
  const cls = head.storageClass ?? "STANDARD";
  if (o.storageClass && cls !== o.storageClass) {
    problems.push(`storage class ${cls} in the bucket, ${o.storageClass} asked`);
  }
  const e = o.encryption;
  if (e) {
    if (head.encryption !== e.algorithm) {
      problems.push(`encryption ${head.encryption ?? "none"} in the bucket, ${e.algorithm} asked`);
    } else if (e.kmsKeyId && !sameKmsKey(head.kmsKeyId, e.kmsKeyId)) {
      problems.push(`KMS key ${head.kmsKeyId ?? "none"} in the bucket, ${e.kmsKeyId} asked`);
    }
  }
  return problems;
}

/** S3 reports the key's ARN; the setting may be the ARN or the bare id. */
function sameKmsKey(stored: string | undefined, asked: string): boolean {
  if (!stored) return false;
  return stored === asked || (!asked.startsWith("arn:") && stored.endsWith(`:key/${asked}`));
}
