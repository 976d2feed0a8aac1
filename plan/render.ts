/** The plan as text for people (pure). */
import { type Census, SIZE_BUCKETS } from "./census.ts";
import { type Estimate, type EstimateInput, S3_PUT_PER_SEC } from "./estimate.ts";
import { PRICES_REGION, PRICES_TAKEN, STORAGE_PRICES } from "./prices.ts";
import type { StorageEstimate } from "./storage-estimate.ts";

export interface PlanView {
  readonly source: string;
  readonly target: string;
  readonly census: Census;
  /** False when the walk stopped at `--sample`. */
  readonly complete: boolean;
  readonly walkSec: number;
  /** Set when a sample was scaled to this many entries. */
  readonly scaledTo?: number | undefined;
  readonly filtered?: { excluded: number; notIncluded: number; olderThan: number } | undefined;
  readonly input: EstimateInput;
  readonly minPartMiB: number;
  readonly estimate: Estimate;
  /** What the loaded objects cost to keep, by class, tags and encryption. */
  readonly storage: StorageEstimate;
  /** Dry run only: what would be sent. */
  readonly dispatch?:
    | { readonly messages: number; readonly entries: number; readonly tocFile: string }
    | undefined;
}

const n = (x: number) => Math.round(x).toLocaleString("en-US");
const usd = (x: number) => (x < 0.01 && x > 0 ? "<$0.01" : `$${x.toFixed(2)}`);
export const bytes = (b: number): string => {
  const u = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = b;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
};
export const duration = (sec: number): string => {
  if (!Number.isFinite(sec)) return "∞";
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0
    ? `${h} h ${String(m).padStart(2, "0")} min`
    : m > 0
      ? `${m} min ${String(s % 60).padStart(2, "0")} s`
      : `${s} s`;
};

export function renderPlan(v: PlanView): string {
  const c = v.census;
  const e = v.estimate;
  const f = v.input.fleet;
  const p = v.input.prices;
  const out: string[] = [];
  out.push(`plan: ${v.source} → ${v.target}`);
  out.push(
    v.complete
      ? `  walked the whole source in ${v.walkSec.toFixed(1)} s (${n(c.entries / Math.max(v.walkSec, 0.001))} entries/s)`
      : `  SAMPLE: the walk stopped after ${n(c.entries)} entries (${v.walkSec.toFixed(1)} s); counts below are of the sample` +
          (v.scaledTo
            ? `, the estimate is scaled to ${n(v.scaledTo)} entries`
            : ", and so is the estimate (give --total-entries to scale it)"),
  );
  out.push("");
  out.push(
    `entries ${n(c.entries)}: ${n(c.files)} files (${bytes(c.bytes)}), ${n(c.dirs)} directories (the root included), ${n(c.symlinks)} symlinks`,
  );
  if (c.largestFile)
    out.push(`largest file ${bytes(c.largestFile.size)}: ${JSON.stringify(c.largestFile.path)}`);
  if (v.filtered && v.filtered.excluded + v.filtered.notIncluded + v.filtered.olderThan > 0)
    out.push(
      `left out by the filters: ${n(v.filtered.excluded)} excluded, ${n(v.filtered.notIncluded)} not included, ${n(v.filtered.olderThan)} older than --modified-after`,
    );
  out.push("");
  out.push("file sizes");
  const maxFiles = Math.max(1, ...c.histogram.map((h) => h.files));
  SIZE_BUCKETS.forEach((b, i) => {
    const h = c.histogram[i] ?? { files: 0, bytes: 0 };
    const bar = "█".repeat(Math.round((h.files / maxFiles) * 30));
    const share = c.files > 0 ? ((h.files / c.files) * 100).toFixed(1) : "0.0";
    out.push(
      `  ${b.label.padEnd(10)} ${n(h.files).padStart(11)} ${`${share}%`.padStart(6)} ${bytes(h.bytes).padStart(9)}  ${bar}`,
    );
  });
  if (c.multipartFiles > 0)
    out.push(
      `  ${n(c.multipartFiles)} files go up in parts: ${n(c.multipartParts)} parts of at least ${v.minPartMiB} MiB`,
    );
  out.push("");
  out.push("what the report will list");
  const list = (label: string, count: number, paths: readonly string[]) => {
    out.push(`  ${label}: ${n(count)}`);
    for (const p of paths.slice(0, 5)) out.push(`    ${JSON.stringify(p)}`);
    if (count > 5) out.push(`    … and ${n(count - 5)} more`);
  };
  list("special files (FIFOs, sockets, devices), skipped", c.counts.specialFiles, c.specialFiles);
  list("names that are not UTF-8, failed", c.counts.nonUtf8Names, c.nonUtf8Names);
  list("keys over 1,024 bytes, failed", c.counts.keysTooLong, c.keysTooLong);
  list("cannot be read, failed", c.counts.unreadable, c.unreadable);
  if (v.dispatch) {
    out.push("");
    out.push(
      `would send ${n(v.dispatch.entries)} entries in ${n(v.dispatch.messages)} TOC messages (WRITE; VALIDATE sends them again); TOC written to ${v.dispatch.tocFile}`,
    );
  }
  out.push("");
  out.push(
    `estimate for ${f.workers} × ${f.instanceType} workers (${f.filesPerSecPerWorker} files/s and ${f.instance.networkMBps} MB/s each assumed), target ${v.input.target.kind === "s3" ? "s3:// (direct)" : "a yas3fs mount"}${v.input.target.empty ? ", empty" : ""}`,
  );
  out.push(
    `  time   ${duration(e.seconds.total)}: boot ${duration(e.seconds.boot)}, WRITE ${duration(e.seconds.write)} (${n(e.fleetFilesPerSec)} files/s or ${n(e.fleetMBPerSec)} MB/s; limited by ${e.writeLimitedBy}), VALIDATE ${duration(e.seconds.validate)}`,
  );
  out.push(
    `  requests  S3 PUT ${n(e.requests.put)}, S3 HEAD ${n(e.requests.head)}, SQS ${n(e.requests.sqs)} (${v.input.sqsRequestsPerEntry} per entry)`,
  );
  out.push("  cost");
  out.push(
    `    S3 PUT      ${usd(e.cost.s3Put).padStart(10)}  (${n(e.requests.put)} × $${p.s3PutPer1k} per 1,000)`,
  );
  out.push(
    `    S3 HEAD     ${usd(e.cost.s3Head).padStart(10)}  (${n(e.requests.head)} × $${p.s3HeadPer1k} per 1,000)`,
  );
  out.push(
    `    SQS         ${usd(e.cost.sqs).padStart(10)}  (${n(e.requests.sqs)} × $${p.sqsPerMillion} per million)`,
  );
  out.push(
    `    EC2         ${usd(e.cost.ec2).padStart(10)}  (${e.instanceHours.toFixed(2)} instance-hours × $${f.instance.perHour} per hour, ${f.instanceType} On-Demand)`,
  );
  out.push(
    `    EBS         ${usd(e.cost.ebs).padStart(10)}  (${f.volumeGiB} GiB gp3 each × $${p.ebsGp3PerGbMonth} per GB-month)`,
  );
  out.push(`    total       ${usd(e.cost.total).padStart(10)}  (data into S3 from EC2 in the region: free)`);
  out.push(...storageLines(v.storage));
  out.push(
    `  AWS DataSync for the same ${bytes(v.input.workload.bytes)}: ${usd(e.dataSync.basic)} Basic ($${p.dataSyncBasicPerGb}/GB), ${usd(e.dataSync.enhanced)} Enhanced ($${p.dataSyncEnhancedPerGb}/GB + $${p.dataSyncEnhancedPerTask} per task), S3 requests included`,
  );
  out.push(
    `  prices: ${PRICES_REGION} list prices taken ${PRICES_TAKEN}; override with --price-* flags; check them against the live pages`,
  );
  out.push(...renderHotPrefixes(e.hotPrefixes, v.complete));
  return `${out.join("\n")}\n`;
}

/** A duration, to the tenth of a second under a minute. */
const short = (sec: number) => (sec < 60 ? `${sec.toFixed(1)} s` : duration(sec));

/** The warning about directories that need more than one S3 prefix's PUT rate at the planned fleet size. */
function renderHotPrefixes(hot: Estimate["hotPrefixes"], complete: boolean): string[] {
  const first = hot[0];
  if (!first) return [];
  const out = [
    "",
    `WARNING: ${hot.length === 1 ? "1 directory needs" : `${hot.length} directories need`} more than one S3 prefix's ${n(S3_PUT_PER_SEC)} PUT/s at this fleet size (${n(first.putPerSec)} PUT/s)${complete ? "" : " (entries counted in the sample)"}:`,
  ];
  for (const h of hot.slice(0, 5)) {
    out.push(
      `  ${JSON.stringify(h.dir)}: ${n(h.entries)} entries of its own; at one prefix's rate ${short(h.secondsAtPrefixRate)} instead of ${short(h.secondsAtFleetRate)}`,
    );
  }
  if (hot.length > 5) out.push(`  … and ${n(hot.length - 5)} more`);
  out.push(
    "  S3 answers 503 SlowDown past that rate until it splits the prefix; the workers then pace it (--prefix-pacing)",
    "  and WRITE takes longer: split such directories, or ask AWS to pre-partition the bucket for them.",
  );
  return out;
}

/** The monthly cost of what was loaded, and the minimums of its class. */
function storageLines(s: StorageEstimate): string[] {
  const p = STORAGE_PRICES[s.storageClass];
  const out = [
    `  then each month, in ${s.storageClass}: ${usd(s.totalPerMonth)}`,
    `    storage     ${usd(s.perMonth).padStart(10)}  (${s.billedGb.toFixed(2)} GB billed × $${p.perGbMonth} per GB-month${p.minObjectBytes > 0 ? `; each object billed as at least ${p.minObjectBytes / 1024} KiB` : ""}${p.overheadBytes > 0 ? `; ${p.overheadBytes / 1024} KiB of index added to each file, 8 KiB of it at STANDARD's price` : ""})`,
  ];
  if (s.minDays > 0)
    out.push(
      `    minimum     ${usd(s.minimumCharge).padStart(10)}  (${s.minDays} days of storage are billed even if the objects are deleted or replaced sooner)`,
    );
  if (s.monitoringPerMonth > 0)
    out.push(`    monitoring  ${usd(s.monitoringPerMonth).padStart(10)}  (objects of 128 KiB or more)`);
  if (s.tagsPerMonth > 0)
    out.push(`    tags        ${usd(s.tagsPerMonth).padStart(10)}  ($0.01 per 10,000 tags)`);
  if (s.kmsWithoutBucketKeys > 0)
    out.push(
      `    KMS key     ${usd(s.kmsKeyPerMonth).padStart(10)}  (bucket keys on: a few KMS requests per worker and hour; one per object would have cost ${usd(s.kmsWithoutBucketKeys)})`,
    );
  return out;
}
