/**
 * Asks the instance metadata service every `pollMs` whether EC2 has given this Spot instance its interruption
 * notice, and hands the first notice to the session (which drains). A service that cannot be asked is logged
 * (the first failure, then every 60th in a row) and asked again: the worker goes on working meanwhile.
 */
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { SpotNotice, SpotNotices } from "../core/ports.ts";
import { pause } from "../core/retry.ts";

export interface SpotWatch {
  readonly notices: SpotNotices;
  readonly pollMs: number;
  readonly onNotice: (notice: SpotNotice) => void;
  readonly log: Logger;
}

/** Runs until the first notice or until `signal` aborts. */
export async function watchSpotNotice(w: SpotWatch, signal: AbortSignal): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const notice = await w.notices.check(signal);
      if (failures > 0)
        w.log.info(`the instance metadata service answers again after ${failures} failure(s)`);
      failures = 0;
      if (notice) {
        w.onNotice(notice);
        return;
      }
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      if (failures === 1 || failures % 60 === 0) {
        w.log.warn(
          `could not ask the instance metadata service for a Spot interruption notice (${failures} time(s) in a row, asking again): ${describe(err)}`,
        );
      }
    }
    await pause(w.pollMs, signal);
  }
}
