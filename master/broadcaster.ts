/**
 * The master's broadcasts (MODE, SHUTDOWN) on the control topic. They go out one at a time, beside the run
 * loop (a slow or failing publish must not hold it); while one is out, only the newest waiting one is kept:
 * the beacon repeats the current mode anyway.
 */
import { describe } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { encodeMessage } from "../core/messages.ts";
import type { Topic } from "../core/ports.ts";
import type { BroadcastBody } from "./phase-machine.ts";

export interface Broadcaster {
  /** Publishes `message` after the one being published, in place of any still waiting. */
  send(message: BroadcastBody): void;
  /** Resolves when nothing is out or waiting (the last SHUTDOWN goes out before the master stops). */
  settled(): Promise<void>;
}

export function createBroadcaster(o: {
  readonly topic: Topic;
  readonly runId: string;
  readonly now: () => number;
  readonly log: Logger;
  /** The signal each publish gets: a bound on its time, not the run's abort (a SHUTDOWN must still go out). */
  readonly bounded: () => AbortSignal;
}): Broadcaster {
  let next: BroadcastBody | null = null;
  let running: Promise<void> | null = null;
  const drain = async () => {
    while (next) {
      const message = next;
      next = null;
      const body = message.type === "MODE" ? { ...message, sentAtMs: o.now() } : message;
      try {
        await o.topic.publish(encodeMessage(o.runId, body), o.bounded());
      } catch (err) {
        // The beacon repeats the mode, so a lost broadcast costs a few seconds, not the run.
        o.log.warn(`broadcast of ${message.type} failed: ${describe(err)}`);
      }
    }
    running = null;
  };
  return {
    send(message) {
      next = message;
      running ??= drain();
    },
    settled: () => running ?? Promise.resolve(),
  };
}
