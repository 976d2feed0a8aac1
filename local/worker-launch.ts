/**
 * A local run starts its worker processes before its endpoint and queues exist, so that loading the worker
 * program (the largest part of a small load's fixed cost) overlaps the emulator's start. A worker started with
 * `LAUNCH_FLAG` as its first argument waits for one line on its standard input: the rest of the arguments,
 * and the environment variables, it would otherwise have been started with. The rest of its standard input is
 * what it was before: open while the parent lives.
 */
import type { Writable } from "node:stream";

/** The worker entry's only argument when its settings follow on standard input. */
export const LAUNCH_FLAG = "--launch-from-stdin";

export interface WorkerLaunch {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Hands a started worker its settings (one JSON line). */
export function sendLaunch(stdin: Writable, launch: WorkerLaunch): void {
  stdin.write(`${JSON.stringify(launch)}\n`);
}

/** Decodes the launch line; a clear error for anything that is not one. */
export function decodeLaunch(line: string): WorkerLaunch {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new Error(`the launch line on standard input is not JSON: ${line.slice(0, 200)}`, { cause: err });
  }
  const o = v as { args?: unknown; env?: unknown };
  const argsOk = Array.isArray(o?.args) && o.args.every((a) => typeof a === "string");
  const envOk =
    typeof o?.env === "object" && o.env !== null && Object.values(o.env).every((x) => typeof x === "string");
  if (!argsOk || !envOk)
    throw new Error(
      `the launch line on standard input needs {args: string[], env: {NAME: string}}: ${line.slice(0, 200)}`,
    );
  return o as WorkerLaunch;
}

/**
 * Reads the launch line from `input`, leaving the stream paused after it. Fails when the input ends first
 * (the parent went away) or nothing came within `timeoutMs`.
 */
export function readLaunch(input: NodeJS.ReadableStream, timeoutMs: number): Promise<WorkerLaunch> {
  return new Promise((resolve, reject) => {
    let text = "";
    const done = (err: Error | null, launch?: WorkerLaunch) => {
      clearTimeout(timer);
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      input.pause();
      if (err) reject(err);
      else if (launch) resolve(launch);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const nl = text.indexOf("\n");
      if (nl < 0) return;
      let launch: WorkerLaunch;
      try {
        launch = decodeLaunch(text.slice(0, nl));
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      done(null, launch);
      // Put back what followed the line, once this listener is off and the stream paused.
      const rest = text.slice(nl + 1);
      if (rest) input.unshift(Buffer.from(rest));
    };
    const onEnd = () =>
      done(new Error("standard input closed before the worker's settings came (the parent process is gone)"));
    const timer = setTimeout(
      () => done(new Error(`no worker settings on standard input within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    input.on("data", onData);
    input.once("end", onEnd);
    input.resume();
  });
}
