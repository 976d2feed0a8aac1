/**
 * How far the master lets V8's old generation grow between full collections. The master's live heap is small
 * and flat (the TOC streams from the crawl through files on disk to SQS), but entries in flight survive a few
 * young collections and are promoted before they die. On a machine with plenty of memory V8 lets the old
 * generation grow to several times what the last full collection left: on a million-entry TOC the dead
 * entries piled up to over 100 MB before a full collection swept them, so the peak grew with the TOC. Capped
 * at `percent` above what was left, full collections come sooner and each sweeps less, and the peak stays
 * where a small TOC leaves it. This is no hard limit: a run that really holds more (a million failures to
 * report) still gets the memory, it only collects more often.
 */
import v8 from "node:v8";

export const MASTER_HEAP_GROWTH_PERCENT = 30;

/** Sets the growth for this whole process: call it once, from the master's entry point. */
export function boundHeapGrowth(percent = MASTER_HEAP_GROWTH_PERCENT): void {
  // V8 reads this flag whenever it sets the next limit, so setting it at run time takes effect.
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
