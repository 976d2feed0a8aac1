/** The live figures of a run, taken from the phase machine's state every `everyMs` (and at the end). */
import type { FleetLive } from "./fleet-watch.ts";
import type { MachineState } from "./phase-machine.ts";

export interface Progress {
  readonly phase: string;
  readonly stage: string | null;
  readonly entriesSent: number;
  readonly batchesSent: number;
  readonly batchesDone: number;
  readonly written: number;
  readonly validated: number;
  readonly failed: number;
  readonly bytes: number;
  readonly filesPerSec: number;
  readonly mbPerSec: number;
  readonly workersAlive: number;
  readonly workersLost: number;
  /** A sized fleet's forecast against its deadline, and the money spent so far (`master --launch --deadline`). */
  readonly fleet?: FleetLive;
}

/** Hands `print` the figures at most every `everyMs`, with rates over the time since the last ones. */
export function progressMeter(everyMs: number, now: () => number, print: (p: Progress) => void) {
  let last = now();
  let lastCount = 0;
  let lastBytes = 0;
  return {
    update(s: MachineState) {
      const t = now();
      if (t - last < everyMs && !s.finished) return;
      const count = s.write.ok + s.write.failed + s.write.skipped + s.validate.ok + s.validate.failed;
      const dt = Math.max(1, t - last) / 1000;
      const workers = Object.values(s.workers);
      print({
        phase: s.phase,
        stage: s.dispatch?.stage ?? null,
        entriesSent: s.dispatch?.entries ?? 0,
        batchesSent: s.dispatch?.batches ?? 0,
        batchesDone: s.dispatch?.done ?? 0,
        written: s.write.ok,
        validated: s.validate.ok,
        failed: s.errors.length,
        bytes: s.write.bytes,
        filesPerSec: Math.round((count - lastCount) / dt),
        mbPerSec: Math.round(((s.write.bytes - lastBytes) / 1e6 / dt) * 10) / 10,
        workersAlive: workers.filter((w) => w.state !== "LOST" && w.state !== "STOPPED").length,
        workersLost: workers.filter((w) => w.state === "LOST").length,
      });
      last = t;
      lastCount = count;
      lastBytes = s.write.bytes;
    },
  };
}
