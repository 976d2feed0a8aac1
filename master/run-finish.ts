/**
 * What a run does once its phases are over and before its report is final: the verification manifest
 * (`--manifest-out`) from the final state, then the report itself.
 */

import type { Logger } from "../core/log.ts";
import type { ObjectStore } from "../core/object-store.ts";
import type { ManifestRecorder } from "./manifest.ts";
import { withManifest, writeManifest } from "./manifest-report.ts";
import type { MachineState } from "./phase-types.ts";
import { buildReport, type RunReport } from "./report.ts";

/** What a run leaves behind beyond its report (`--manifest-out`, `--delete`, `--max-delete`). */
export interface SyncOptions {
  readonly manifestOut?: string | undefined;
  readonly delete?: boolean | undefined;
  readonly maxDelete?: number | undefined;
}

export interface FinishContext {
  readonly ports: { readonly storeFor?: ((bucket: string) => ObjectStore) | undefined };
  readonly options: {
    readonly source: string;
    readonly target: string;
    readonly sync?: SyncOptions | undefined;
    readonly log: Logger;
  };
  readonly manifest: ManifestRecorder | null;
  /** The master's own SQS requests. */
  readonly sqsRequests: number;
  readonly peakRssBytes: number;
  readonly now: () => number;
}

export async function finishRun(state: MachineState, c: FinishContext): Promise<RunReport> {
  const { options } = c;
  const out = options.sync?.manifestOut;
  const written =
    c.manifest && out ? await writeManifest(c.manifest, state, out, c.ports, options.log) : undefined;
  const report = buildReport(state, {
    source: options.source,
    target: options.target,
    endedAtMs: c.now(),
    sqsRequests: c.sqsRequests,
    masterPeakRssBytes: c.peakRssBytes,
  });
  return written ? withManifest(report, written) : report;
}
