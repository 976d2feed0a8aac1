/**
 * The prices the plan assumes: AWS list prices in us-east-1, On-Demand, Linux, taken on the date below from
 * the public price pages (S3, SQS, EC2, EBS, DataSync). Prices change and differ by region: every one can be
 * overridden on the command line, and the plan prints the ones it used.
 */
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
