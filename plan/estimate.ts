/**
 * The plan's model of a run's time and cost. Pure: counts, fleet and prices in, figures out, every assumption
 * a named input so that the plan can print it and a test can check it.
 *
 * Time: WRITE goes at the slower of the fleet's file rate and its network rate; the file rate is the workers'
 * (handlers × per-request latency, measured) capped by S3's 3,500 PUT/s per prefix before it scales out.
 * VALIDATE is one HEAD per entry, at the workers' check rate capped by S3's 5,500 GET/HEAD per second.
 * The fleet also boots (instances, Node, mounts) before WRITE.
 * Cost: S3 requests, SQS requests, the fleet's instance and volume hours. Bytes into S3 from EC2 in the same
 * region cost nothing, and the stack's S3 gateway endpoint carries them without a NAT gateway.
 */
import type { InstanceType, Prices } from "./prices.ts";

export interface Workload {
  readonly entries: number;
  readonly files: number;
  readonly dirs: number;
  readonly symlinks: number;
  readonly bytes: number;
  /** Files uploaded in parts, and their parts (each part is a PUT-priced request, plus create and complete). */
  readonly multipartFiles: number;
  readonly multipartParts: number;
  /** Files under 128 KiB and their bytes (the IA classes bill each as 128 KiB); 0 when not counted. */
  readonly smallFiles?: number;
  readonly smallBytes?: number;
}

export interface Fleet {
  readonly workers: number;
  readonly instanceType: string;
  readonly instance: InstanceType;
  readonly volumeGiB: number;
  /** Files (small) one worker writes per second. */
  readonly filesPerSecPerWorker: number;
  /** Entries one worker checks per second in VALIDATE. */
  readonly checksPerSecPerWorker: number;
  /** From launch to the first WRITE: boot, install, mounts. */
  readonly bootSec: number;
}

export interface Target {
  /** `s3`: workers write objects (`--target s3://`); `mount`: through a yas3fs mount of the bucket. */
  readonly kind: "s3" | "mount";
  /** The target is empty (`--target-empty`): no HEAD before each write. */
  readonly empty: boolean;
}

export interface EstimateInput {
  readonly workload: Workload;
  readonly fleet: Fleet;
  readonly target: Target;
  readonly prices: Prices;
  /** SQS requests per entry (send, receive, extend, delete, report; the report's `sqsRequestsPerEntry`). */
  readonly sqsRequestsPerEntry: number;
  /** The tree's directories with the most entries of their own (census.ts `busiestDirs`), for `hotPrefixes`. */
  readonly busiestDirs?: readonly { readonly dir: string; readonly entries: number }[] | undefined;
}

/** A directory (one S3 prefix) that the planned fleet would write faster than S3 takes on one prefix. */
export interface HotPrefix {
  readonly dir: string;
  readonly entries: number;
  /** PUT/s the fleet would send to it. */
  readonly putPerSec: number;
  /** Its WRITE time at one prefix's rate, and at the fleet's. */
  readonly secondsAtPrefixRate: number;
  readonly secondsAtFleetRate: number;
}

/** S3's request rates per partitioned prefix before it scales out. */
export const S3_PUT_PER_SEC = 3_500;
export const S3_GET_PER_SEC = 5_500;

export interface Estimate {
  readonly requests: { readonly put: number; readonly head: number; readonly sqs: number };
  readonly seconds: {
    readonly boot: number;
    readonly write: number;
    readonly validate: number;
    readonly total: number;
  };
  /** What sets the WRITE time. */
  readonly writeLimitedBy: "files" | "network" | "s3-put-rate";
  readonly fleetFilesPerSec: number;
  readonly fleetMBPerSec: number;
  readonly instanceHours: number;
  readonly cost: {
    readonly s3Put: number;
    readonly s3Head: number;
    readonly sqs: number;
    readonly ec2: number;
    readonly ebs: number;
    readonly total: number;
  };
  readonly dataSync: { readonly basic: number; readonly enhanced: number };
  /** Directories that need more than one prefix's PUT rate at this fleet size (see `hotPrefixes`). */
  readonly hotPrefixes: readonly HotPrefix[];
}

/**
 * The directories the fleet would write faster than one S3 prefix takes (3,500 PUT/s). The TOC lists a
 * directory's entries together and the master mixes directories only a few thousand entries at a time, so a
 * directory of many entries is, for a while, all that the whole fleet writes: it gets the fleet's PUT rate.
 * S3 answers SlowDown past its prefix's rate (until it splits the prefix, which takes minutes) and the workers
 * slow down to it. Directories of fewer entries than one second of a prefix's rate are over before that matters.
 */
export function hotPrefixes(i: EstimateInput): HotPrefix[] {
  // Through a yas3fs mount each file is two PUT-priced requests: the upload, and the copy for its metadata.
  const putsPerEntry = i.target.kind === "s3" ? 1 : 2;
  const fleetPuts = i.fleet.workers * i.fleet.filesPerSecPerWorker * putsPerEntry;
  if (fleetPuts <= S3_PUT_PER_SEC) return [];
  return (i.busiestDirs ?? [])
    .filter((d) => d.entries >= S3_PUT_PER_SEC)
    .map((d) => ({
      dir: d.dir,
      entries: d.entries,
      putPerSec: fleetPuts,
      secondsAtPrefixRate: (d.entries * putsPerEntry) / S3_PUT_PER_SEC,
      secondsAtFleetRate: (d.entries * putsPerEntry) / fleetPuts,
    }));
}

export function estimate(i: EstimateInput): Estimate {
  const w = i.workload;
  const f = i.fleet;
  const p = i.prices;
  // One PUT per file, symlink and directory (directories are marker objects); multipart: create, the parts,
  // complete instead of the one PUT. Through yas3fs: the upload, then a copy onto itself for the metadata.
  const objectPuts = w.entries - w.multipartFiles + w.multipartFiles * 2 + w.multipartParts;
  const put = i.target.kind === "s3" ? objectPuts : objectPuts + w.entries;
  // A HEAD before each write (unless the target is empty) and one per entry in VALIDATE.
  const head = w.entries * (i.target.empty ? 1 : 2);
  const sqs = Math.ceil(w.entries * i.sqsRequestsPerEntry);

  const workerFps = f.workers * f.filesPerSecPerWorker;
  const fleetFilesPerSec = Math.min(workerFps, S3_PUT_PER_SEC);
  const fleetMBPerSec = f.workers * f.instance.networkMBps;
  const byFiles = w.entries / fleetFilesPerSec;
  const byNetwork = w.bytes / 1e6 / fleetMBPerSec;
  const write = Math.max(byFiles, byNetwork);
  const writeLimitedBy =
    byNetwork > byFiles ? "network" : workerFps > S3_PUT_PER_SEC ? "s3-put-rate" : "files";
  const validate = w.entries / Math.min(f.workers * f.checksPerSecPerWorker, S3_GET_PER_SEC);
  const total = f.bootSec + write + validate;
  // EC2 bills per second with a minimum of one minute per instance.
  const instanceHours = (f.workers * Math.max(60, total)) / 3600;

  const s3Put = (put / 1000) * p.s3PutPer1k;
  const s3Head = (head / 1000) * p.s3HeadPer1k;
  const sqsCost = (sqs / 1e6) * p.sqsPerMillion;
  const ec2 = instanceHours * f.instance.perHour;
  const ebs = (instanceHours * f.volumeGiB * p.ebsGp3PerGbMonth) / 730;
  const gb = w.bytes / 1e9;
  return {
    requests: { put, head, sqs },
    seconds: { boot: f.bootSec, write, validate, total },
    writeLimitedBy,
    fleetFilesPerSec,
    fleetMBPerSec,
    instanceHours,
    cost: { s3Put, s3Head, sqs: sqsCost, ec2, ebs, total: s3Put + s3Head + sqsCost + ec2 + ebs },
    // DataSync also pays the same S3 requests on top of its per-GB fee.
    dataSync: {
      basic: gb * p.dataSyncBasicPerGb + s3Put + s3Head,
      enhanced: gb * p.dataSyncEnhancedPerGb + p.dataSyncEnhancedPerTask + s3Put + s3Head,
    },
    hotPrefixes: hotPrefixes(i),
  };
}

/** Scales a sample's counts to a whole tree of `entries` entries. */
export function scaleWorkload(sample: Workload, entries: number): Workload {
  if (sample.entries === 0) return sample;
  const k = entries / sample.entries;
  const r = (n: number) => Math.round(n * k);
  return {
    entries,
    files: r(sample.files),
    dirs: r(sample.dirs),
    symlinks: r(sample.symlinks),
    bytes: r(sample.bytes),
    multipartFiles: r(sample.multipartFiles),
    multipartParts: r(sample.multipartParts),
    smallFiles: r(sample.smallFiles ?? 0),
    smallBytes: r(sample.smallBytes ?? 0),
  };
}
