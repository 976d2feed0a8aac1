/**
 * The small interfaces through which the programs reach AWS. Only `core/aws/` implements them with the SDK;
 * the master, the workers and their tests see nothing else.
 */
import type { Market } from "./launch-attempts.ts";

export interface ReceivedMessage {
  readonly id: string;
  readonly body: string;
  readonly receipt: string;
  /** How many times SQS has handed this message out, this time included. */
  readonly receiveCount: number;
}

/** An SQS queue: the TOC queue, the report queue, a worker's control queue, the dead-letter queue. */
export interface MessageQueue {
  readonly url: string;
  /** Sends bodies in batches of up to 10; entries the service refuses are retried, then thrown. */
  send(bodies: readonly string[], signal?: AbortSignal): Promise<void>;
  receive(opts: ReceiveOptions, signal?: AbortSignal): Promise<ReceivedMessage[]>;
  delete(receipts: readonly string[], signal?: AbortSignal): Promise<void>;
  /** Keeps messages hidden for `visibilitySec` more seconds (a worker still working on them). */
  extend(receipts: readonly string[], visibilitySec: number, signal?: AbortSignal): Promise<void>;
  purge(signal?: AbortSignal): Promise<void>;
  visibilityTimeoutSec(signal?: AbortSignal): Promise<number>;
  /** SQS requests made through this queue so far (every kind). */
  readonly requests: number;
}

export interface ReceiveOptions {
  readonly max: number;
  readonly waitSec: number;
}

/** The SNS control topic. */
export interface Topic {
  publish(body: string, signal?: AbortSignal): Promise<void>;
}

/** A worker's own control queue, subscribed to the topic while the worker lives. */
export interface ControlSubscription {
  readonly queue: MessageQueue;
  readonly subscriptionArn: string;
}

export interface Subscriptions {
  open(queueName: string, signal?: AbortSignal): Promise<ControlSubscription>;
  /** Unsubscribes and deletes the queue; a queue or subscription already gone is not an error. */
  close(queueUrl: string, subscriptionArn: string, signal?: AbortSignal): Promise<void>;
}

/** An EC2 instance of the worker fleet, as the master sees it. */
export interface FleetInstance {
  readonly id: string;
  readonly state: "pending" | "running" | "shutting-down" | "terminated" | "stopping" | "stopped";
  /** The instance's private DNS name, which is also its host name on Amazon Linux in most VPCs. */
  readonly privateDnsName?: string | undefined;
  /** How it was bought: Spot or On-Demand (unknown to a fleet that cannot tell). */
  readonly market?: Market | undefined;
}

/** The workers' machines: launched from the stack's launch template, found by tag, terminated. */
export interface Fleet {
  /** Starts up to `count` instances carrying `tags`; EC2 may start fewer (capacity), never none without an error. */
  launch(
    count: number,
    tags: Readonly<Record<string, string>>,
    signal?: AbortSignal,
  ): Promise<FleetInstance[]>;
  /** The instances carrying every one of `tags`, in any state but terminated. */
  describe(tags: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<FleetInstance[]>;
  /** Terminates these instances; one already gone is not an error. */
  terminate(ids: readonly string[], signal?: AbortSignal): Promise<void>;
}

/** EC2's Spot interruption notice: the instance is taken about two minutes after it is given. */
export interface SpotNotice {
  /** terminate, stop or hibernate. */
  readonly action: string;
  /** When EC2 takes the instance; null when the notice gave no time. */
  readonly takenAtMs: number | null;
}

/** Where a worker on a Spot instance hears of its interruption: the instance metadata service. */
export interface SpotNotices {
  /** The notice, or null while there is none; throws when the service cannot be asked. */
  check(signal: AbortSignal): Promise<SpotNotice | null>;
}

/**
 * Removes entries from a run's target (`--delete`): the objects of an S3 target (directory markers included),
 * the files and directories of a directory target. An entry already gone counts as removed.
 */
export interface TargetDeleter {
  readonly description: string;
  /** Removes these entries; returns those that could not be removed, with why. */
  remove(
    entries: readonly { readonly path: string; readonly kind: "file" | "dir" | "symlink" }[],
    signal?: AbortSignal,
  ): Promise<{ path: string; reason: string }[]>;
}
