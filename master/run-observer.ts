/**
 * Something that watches a run from beside its loop (the worker fleet): it is told every event the phase
 * machine took and the state after it, and may add events of its own (a drain, a fatal). One model of the
 * run, the machine's: an observer keeps no second account of which workers live.
 */
import type { MachineEvent, MachineState } from "./phase-machine.ts";

export interface RunObserver {
  /** Called once, before the first event, with the way to add events to the run's queue. */
  attach(emit: (e: MachineEvent) => void): void;
  /** Called after each event the machine took, with the state after it. Must not block or throw. */
  observe(state: MachineState, event: MachineEvent): void;
}
