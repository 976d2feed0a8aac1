/**
 * The verification manifest's line: one JSON object per TOC entry, what became of it and why, in a form a
 * script or an auditor can check later. Pure: the codec and the rule that gives each entry its outcome.
 */
import { z } from "zod";
import { ENTRY_KINDS, type EntryMark } from "../core/messages.ts";

/**
 * `verified`: written in this run and checked in VALIDATE. `unchanged-verified`: found already there as in the
 * source (not written again), then checked. `skipped` and `failed` carry the report's reason. `not-verified`:
 * the run stopped before the entry was written or checked (the report counts it as not attempted or not
 * validated); its reason says which.
 */
export const MANIFEST_OUTCOMES = [
  "verified",
  "unchanged-verified",
  "skipped",
  "failed",
  "not-verified",
] as const;
export type ManifestOutcome = (typeof MANIFEST_OUTCOMES)[number];

const ManifestLine = z.object({
  path: z.string(),
  /** Null for an entry the crawl could not read (its kind, size and time are unknown). */
  kind: z.enum(ENTRY_KINDS).nullable(),
  size: z.number().int().nonnegative().nullable(),
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact). */
  mtimeNs: z
    .string()
    .regex(/^-?\d+$/)
    .nullable(),
  /** `crc32:BASE64` (a `-N` suffix: composite over N parts) when the worker knew it; else null. */
  checksum: z.string().nullable(),
  outcome: z.enum(MANIFEST_OUTCOMES),
  reason: z.string().nullable(),
});
export type ManifestLine = z.infer<typeof ManifestLine>;

/** One line of the manifest, newline included. Keys in a fixed order, so that lines compare as text. */
export function encodeManifestLine(l: ManifestLine): string {
  return `${JSON.stringify({
    path: l.path,
    kind: l.kind,
    size: l.size,
    mtimeNs: l.mtimeNs,
    checksum: l.checksum,
    outcome: l.outcome,
    reason: l.reason,
  })}\n`;
}

/** Parses one line (without its newline); throws naming the line when it is not a manifest line. */
export function decodeManifestLine(text: string): ManifestLine {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not a manifest line (not JSON): ${text.slice(0, 80)}`, { cause: err });
  }
  const parsed = ManifestLine.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `not a manifest line (${issue?.path.join(".")}: ${issue?.message}): ${text.slice(0, 80)}`,
    );
  }
  return parsed.data;
}

/** What the run knows of one TOC entry when the manifest is written. */
export interface EntryFacts {
  /** The report's error or skip for this path, if any (an error wins over a skip). */
  readonly issue?: { readonly outcome: "failed" | "skipped"; readonly reason: string } | undefined;
  /** Whether the entry's WRITE batch was counted, and what its worker said of the entry. */
  readonly written: boolean;
  readonly mark?: EntryMark | undefined;
  /** Whether the entry's VALIDATE batch was counted. */
  readonly checked: boolean;
}

/** The outcome and reason of an entry from what the run knows of it. */
export function outcomeOf(f: EntryFacts): { outcome: ManifestOutcome; reason: string | null } {
  if (f.issue) return { outcome: f.issue.outcome, reason: f.issue.reason };
  if (!f.written)
    return { outcome: "not-verified", reason: "not written: the run stopped before its batch was done" };
  // A letter without its issue cannot come from our workers; said rather than taken as verified.
  if (f.mark === "f" || f.mark === "s")
    return { outcome: "failed", reason: "reported failed or skipped by its worker without a reason" };
  const unchanged = f.mark === "u";
  if (!f.checked) {
    return {
      outcome: "not-verified",
      reason: `${unchanged ? "found unchanged" : "written"}, not checked: the run stopped before VALIDATE checked it`,
    };
  }
  return { outcome: unchanged ? "unchanged-verified" : "verified", reason: null };
}
