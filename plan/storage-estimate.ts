/**
 * What the loaded objects cost to keep, by the write options: storage per month in the chosen class (with
 * its per-object minimums and archive overheads), its minimum duration, tags, INTELLIGENT_TIERING's
 * monitoring and SSE-KMS. Pure: the workload, the options and the price table in, figures out.
 */
import type { StorageClass } from "../core/write-options.ts";
import type { Workload } from "./estimate.ts";
import {
  INTELLIGENT_TIERING_MONITORING_PER_1K,
  KMS_KEY_PER_MONTH,
  KMS_REQUESTS_PER_10K,
  STORAGE_PRICES,
  TAGS_PER_10K_MONTH,
} from "./prices.ts";

export interface StorageOptions {
  readonly storageClass: StorageClass;
  /** Tags on each object. */
  readonly tags: number;
  /** SSE-KMS (always with bucket keys), and whether its key is one of the account's own (billed monthly). */
  readonly kms: boolean;
  readonly customerKey: boolean;
}

export interface StorageEstimate {
  readonly storageClass: StorageClass;
  /** GB billed a month: the bytes, small objects raised to the class's minimum, archive overheads. */
  readonly billedGb: number;
  readonly perMonth: number;
  /** The class's minimum duration, and what the load costs if deleted before it is over. */
  readonly minDays: number;
  readonly minimumCharge: number;
  readonly tagsPerMonth: number;
  readonly monitoringPerMonth: number;
  /** KMS with bucket keys: a few requests per worker and hour; what one per object would have cost. */
  readonly kmsKeyPerMonth: number;
  readonly kmsWithoutBucketKeys: number;
  /** Everything a month, once loaded. */
  readonly totalPerMonth: number;
}

export function storageEstimate(w: Workload, o: StorageOptions): StorageEstimate {
  const p = STORAGE_PRICES[o.storageClass];
  const standard = STORAGE_PRICES.STANDARD;
  // Directory markers and symlinks are small objects too (and stay in STANDARD under an archive class).
  const small = w.smallFiles ?? 0;
  const smallBytes = w.smallBytes ?? 0;
  const objects = w.entries;
  const archive = o.storageClass === "GLACIER" || o.storageClass === "DEEP_ARCHIVE";
  const inClass = archive ? w.files : objects;
  const raised = p.minObjectBytes > 0 ? small * p.minObjectBytes - smallBytes : 0;
  const classBytes = w.bytes + Math.max(0, raised) + inClass * Math.min(p.overheadBytes, 32 * 1024);
  const standardBytes = archive ? inClass * (p.overheadBytes - 32 * 1024) : 0;
  const billedGb = (classBytes + standardBytes) / 1e9;
  const perMonth = (classBytes / 1e9) * p.perGbMonth + (standardBytes / 1e9) * standard.perGbMonth;
  const monitored = o.storageClass === "INTELLIGENT_TIERING" ? Math.max(0, w.files - small) : 0;
  const monitoringPerMonth = (monitored / 1000) * INTELLIGENT_TIERING_MONITORING_PER_1K;
  const tagsPerMonth = ((objects * o.tags) / 10_000) * TAGS_PER_10K_MONTH;
  const kmsKeyPerMonth = o.kms && o.customerKey ? KMS_KEY_PER_MONTH : 0;
  // Without bucket keys: a GenerateDataKey per object written (and a Decrypt per multipart upload).
  const kmsWithoutBucketKeys = o.kms ? ((objects + w.multipartFiles) / 10_000) * KMS_REQUESTS_PER_10K : 0;
  return {
    storageClass: o.storageClass,
    billedGb,
    perMonth,
    minDays: p.minDays,
    minimumCharge: (perMonth * p.minDays) / 30,
    tagsPerMonth,
    monitoringPerMonth,
    kmsKeyPerMonth,
    kmsWithoutBucketKeys,
    totalPerMonth: perMonth + tagsPerMonth + monitoringPerMonth + kmsKeyPerMonth,
  };
}
