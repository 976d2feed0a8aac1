/**
 * The prices the plan assumes: AWS list prices in us-east-1, On-Demand, Linux, taken on the date below from
 * the public price pages (S3, SQS, EC2, EBS, DataSync). Prices change and differ by region: every one can be
 * overridden on the command line, and the plan prints the ones it used.
 */
import type { StorageClass } from "../core/write-options.ts";

export const PRICES_TAKEN = "2025-06-01";
export const PRICES_REGION = "us-east-1";

export interface Prices {
  /** S3 Standard PUT, COPY, POST, LIST (and multipart create, part, complete), per 1,000 requests. */
  readonly s3PutPer1k: number;
  /** S3 Standard GET, HEAD and the rest, per 1,000 requests. */
  readonly s3HeadPer1k: number;
  /** SQS standard queue, per million requests (each 64 KiB of a payload is billed as one request). */
  readonly sqsPerMillion: number;
  /** EBS gp3, per GB-month (730 hours). */
  readonly ebsGp3PerGbMonth: number;
  /** DataSync Basic mode, per GB copied. */
  readonly dataSyncBasicPerGb: number;
  /** DataSync Enhanced mode, per GB copied, plus per task execution. */
  readonly dataSyncEnhancedPerGb: number;
  readonly dataSyncEnhancedPerTask: number;
}

export const DEFAULT_PRICES: Prices = {
  s3PutPer1k: 0.005,
  s3HeadPer1k: 0.0004,
  sqsPerMillion: 0.4,
  ebsGp3PerGbMonth: 0.08,
  dataSyncBasicPerGb: 0.0125,
  dataSyncEnhancedPerGb: 0.015,
  dataSyncEnhancedPerTask: 0.55,
};

export interface InstanceType {
  /** On-Demand price per hour. */
  readonly perHour: number;
  /** Baseline network bandwidth, MB/s (the "up to" burst is not sustained over a long load). */
  readonly networkMBps: number;
  readonly vcpus: number;
}

/** Instance types a worker fleet is likely to use (the stack's default is c6i.large). */
export const INSTANCE_TYPES: Readonly<Record<string, InstanceType>> = {
  "c6i.large": { perHour: 0.085, networkMBps: 97, vcpus: 2 },
  "c6i.xlarge": { perHour: 0.17, networkMBps: 195, vcpus: 4 },
  "c6i.2xlarge": { perHour: 0.34, networkMBps: 390, vcpus: 8 },
  "c7i.large": { perHour: 0.08925, networkMBps: 97, vcpus: 2 },
  "c7g.large": { perHour: 0.0725, networkMBps: 117, vcpus: 2 },
  "c7g.xlarge": { perHour: 0.145, networkMBps: 234, vcpus: 4 },
  "c6g.large": { perHour: 0.068, networkMBps: 93, vcpus: 2 },
  "m6i.large": { perHour: 0.096, networkMBps: 97, vcpus: 2 },
  "m7g.large": { perHour: 0.0816, networkMBps: 117, vcpus: 2 },
  "c5.large": { perHour: 0.085, networkMBps: 94, vcpus: 2 },
  "t3.medium": { perHour: 0.0416, networkMBps: 32, vcpus: 2 },
  "t2.medium": { perHour: 0.0464, networkMBps: 25, vcpus: 2 },
};

/** What a storage class costs (us-east-1 list prices), and the minimums S3 bills it by. */
export interface StoragePrice {
  /** Storage per GB-month (the first 50 TB for STANDARD; INTELLIGENT_TIERING: its frequent-access tier). */
  readonly perGbMonth: number;
  /** PUT, COPY, POST, LIST per 1,000 requests into this class. */
  readonly putPer1k: number;
  /** Billed for at least this many days even when deleted sooner. */
  readonly minDays: number;
  /** Each object billed as at least this many bytes. */
  readonly minObjectBytes: number;
  /** Bytes added to each object for the archive's index: 32 KiB at this class's price, 8 KiB at STANDARD's. */
  readonly overheadBytes: number;
}

const KIB = 1024;

export const STORAGE_PRICES: Readonly<Record<StorageClass, StoragePrice>> = {
  STANDARD: { perGbMonth: 0.023, putPer1k: 0.005, minDays: 0, minObjectBytes: 0, overheadBytes: 0 },
  REDUCED_REDUNDANCY: { perGbMonth: 0.024, putPer1k: 0.005, minDays: 0, minObjectBytes: 0, overheadBytes: 0 },
  STANDARD_IA: {
    perGbMonth: 0.0125,
    putPer1k: 0.01,
    minDays: 30,
    minObjectBytes: 128 * KIB,
    overheadBytes: 0,
  },
  ONEZONE_IA: { perGbMonth: 0.01, putPer1k: 0.01, minDays: 30, minObjectBytes: 128 * KIB, overheadBytes: 0 },
  INTELLIGENT_TIERING: {
    perGbMonth: 0.023,
    putPer1k: 0.005,
    minDays: 0,
    minObjectBytes: 0,
    overheadBytes: 0,
  },
  GLACIER_IR: { perGbMonth: 0.004, putPer1k: 0.02, minDays: 90, minObjectBytes: 128 * KIB, overheadBytes: 0 },
  GLACIER: { perGbMonth: 0.0036, putPer1k: 0.03, minDays: 90, minObjectBytes: 0, overheadBytes: 40 * KIB },
  DEEP_ARCHIVE: {
    perGbMonth: 0.00099,
    putPer1k: 0.05,
    minDays: 180,
    minObjectBytes: 0,
    overheadBytes: 40 * KIB,
  },
};

/** INTELLIGENT_TIERING's monitoring, per 1,000 objects of 128 KiB or more, per month. */
export const INTELLIGENT_TIERING_MONITORING_PER_1K = 0.0025;
/** Object tags, per 10,000 tags per month. */
export const TAGS_PER_10K_MONTH = 0.01;
/** KMS requests per 10,000 (GenerateDataKey, Decrypt), and a customer managed key per month. */
export const KMS_REQUESTS_PER_10K = 0.03;
export const KMS_KEY_PER_MONTH = 1;
/** Below this size an object is not monitored by INTELLIGENT_TIERING, and IA classes bill it as this size. */
export const SMALL_OBJECT_BYTES = 128 * KIB;
