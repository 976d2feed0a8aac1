/**
 * The manifest at the end of a run: written from the final state, and said in the report (where it went and
 * its line count, which equals `entries`). A manifest that cannot be written fails the run: it is the proof.
 */
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { ObjectStore } from "../core/object-store.ts";
import type { ManifestRecorder } from "./manifest.ts";
import type { MachineState } from "./phase-types.ts";
import type { RunReport } from "./report.ts";

export type ManifestWritten =
  | { readonly destination: string; readonly lines: number }
  | { readonly destination: string; readonly error: string };

/** How long writing the manifest may take at most (a big TOC read once, an upload): then the run fails. */
const MANIFEST_TIMEOUT_MS = 30 * 60_000;

export async function writeManifest(
  recorder: ManifestRecorder,
  state: MachineState,
  destination: string,
  ports: { readonly storeFor?: ((bucket: string) => ObjectStore) | undefined },
  log: Logger,
): Promise<ManifestWritten> {
  try {
    const written = await recorder.write(
      state,
      destination,
      ports.storeFor,
      AbortSignal.timeout(MANIFEST_TIMEOUT_MS),
    );
    log.info(`manifest: ${written.lines} lines in ${destination}`);
    return written;
  } catch (err) {
    log.error(`the manifest could not be written to ${destination}: ${describe(err)}`);
    return { destination, error: describe(err) };
  }
}

/** The report with its manifest; a run whose manifest failed has not succeeded, and says why. */
export function withManifest(report: RunReport, m: ManifestWritten): RunReport {
  if ("lines" in m) return { ...report, manifest: { destination: m.destination, lines: m.lines } };
  const reason = `the manifest could not be written to ${m.destination}: ${m.error}`;
  return {
    ...report,
    outcome: report.outcome === "succeeded" ? "failed" : report.outcome,
    failureReason: report.failureReason ?? reason,
    notes: [...report.notes, reason],
  };
}
