/** The benchmark's result rows, the printed table and the JSON file. */

export interface Row {
  readonly id: string;
  readonly measure: string;
  readonly unit: string;
  /** Our figure (median over the repetitions), or null when the row was not measured. */
  readonly ours: number | null;
  /** Our figure over the WRITE phase only, where the row has one (a second column, labelled as such). */
  readonly oursWriteOnly?: number | null;
  readonly peer: string | null;
  readonly peerValue: number | null;
  /** ours / peer, or for rows without a peer null. */
  readonly ratio: number | null;
  readonly target: string;
  /** Whether the target is met; null when it cannot be judged. */
  readonly met: boolean | null;
  readonly note: string;
  /** Every repetition's figures, and anything else worth keeping. */
  readonly detail?: unknown;
}

export function notMeasured(id: string, measure: string, target: string, reason: string): Row {
  return {
    id,
    measure,
    unit: "",
    ours: null,
    peer: null,
    peerValue: null,
    ratio: null,
    target,
    met: null,
    note: `NOT MEASURED: ${reason}`,
  };
}

type PeerRow = Omit<Row, "ratio" | "met" | "target" | "peer" | "peerValue"> & {
  peer: string;
  peerValue: number;
};

/** A row against a peer where bigger is better; the target is a minimum ratio (null: none). */
export function ratioRow(r: PeerRow & { minRatio: number | null }): Row {
  const { minRatio, ...rest } = r;
  return withRatio(rest, minRatio === null ? null : { bound: minRatio, atLeast: true });
}

/** A row against a peer where smaller is better (CPU per object); the target is a maximum ratio. */
export function costRatioRow(r: PeerRow & { maxRatio: number }): Row {
  const { maxRatio, ...rest } = r;
  return withRatio(rest, { bound: maxRatio, atLeast: false });
}

function withRatio(r: PeerRow, target: { bound: number; atLeast: boolean } | null): Row {
  const ratio = r.ours !== null && r.peerValue > 0 ? r.ours / r.peerValue : null;
  if (target === null) return { ...r, ratio, target: "-", met: null };
  const { bound, atLeast } = target;
  return {
    ...r,
    ratio,
    target: `${atLeast ? ">=" : "<="} ${bound.toFixed(1)}x`,
    met: ratio === null ? null : atLeast ? ratio >= bound : ratio <= bound,
  };
}

export function formatNumber(n: number | null): string {
  if (n === null || Number.isNaN(n)) return "-";
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 1) return n.toFixed(2);
  return n.toPrecision(2);
}

/** A Markdown table (it reads as plain text too), notes below it. */
export function formatTable(rows: readonly Row[]): string {
  const header = ["measure", "ours", "ours, WRITE only", "peer", "peer figure", "ratio", "target", "met"];
  const body = rows.map((r) => [
    r.measure,
    r.ours === null ? "not measured" : `${formatNumber(r.ours)} ${r.unit}`.trim(),
    r.oursWriteOnly == null ? "-" : `${formatNumber(r.oursWriteOnly)} ${r.unit}`.trim(),
    r.peer ?? "-",
    r.peerValue === null ? "-" : `${formatNumber(r.peerValue)} ${r.unit}`.trim(),
    r.ratio === null ? "-" : `${r.ratio.toFixed(2)}x`,
    r.target,
    r.met === null ? "-" : r.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const out = [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
  const notes = rows.filter((r) => r.note).map((r, i) => `${i + 1}. ${r.measure}: ${r.note}`);
  return [...out, "", ...notes].join("\n");
}
