/** The phase machine's settings the table tests start from: two workers, every bound short and distinct. */
import type { MachineSettings } from "../../master/phase-machine.ts";

export const machineSettings: MachineSettings = {
  expectedWorkers: 2,
  failfast: false,
  beaconMs: 1_000,
  initTimeoutMs: 60_000,
  workerTimeoutMs: 10_000,
  noWorkersTimeoutMs: 30_000,
  stallTimeoutMs: 100_000,
  errorReportTimeoutMs: 5_000,
  shutdownTimeoutMs: 5_000,
};
