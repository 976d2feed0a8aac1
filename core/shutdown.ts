/**
 * Cancellation as a value, in two levels. The first SIGINT/SIGTERM aborts `stop`: take no new work, drain.
 * The second (or `abortAfterMs` after the first) aborts `abort`: cancel in-flight work.
 */
export interface Shutdown {
  /** Aborted at the first signal: stop taking new work. */
  readonly stop: AbortSignal;
  /** Aborted at the second signal or when the drain takes too long: cancel what is in flight. */
  readonly abort: AbortSignal;
  /** How many signals arrived. */
  readonly signals: number;
  requestStop(reason: string): void;
  requestAbort(reason: string): void;
  dispose(): void;
}

export function createShutdown(
  opts: { proc?: NodeJS.Process; abortAfterMs?: number; onSignal?: (n: number, signal: string) => void } = {},
): Shutdown {
  const stop = new AbortController();
  const abort = new AbortController();
  let signals = 0;
  let timer: NodeJS.Timeout | undefined;
  const proc = opts.proc;
  const requestAbort = (reason: string) => {
    if (!abort.signal.aborted) abort.abort(new Error(reason));
    if (!stop.signal.aborted) stop.abort(new Error(reason));
  };
  const requestStop = (reason: string) => {
    if (stop.signal.aborted) return;
    stop.abort(new Error(reason));
    if (opts.abortAfterMs !== undefined) {
      timer = setTimeout(
        () => requestAbort(`${reason}: drain took over ${opts.abortAfterMs} ms`),
        opts.abortAfterMs,
      );
      timer.unref();
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    opts.onSignal?.(signals, signal);
    if (signals === 1) requestStop(`received ${signal}`);
    else requestAbort(`received ${signal} again`);
  };
  proc?.on("SIGINT", onSignal);
  proc?.on("SIGTERM", onSignal);
  return {
    stop: stop.signal,
    abort: abort.signal,
    get signals() {
      return signals;
    },
    requestStop,
    requestAbort,
    dispose() {
      if (timer) clearTimeout(timer);
      proc?.off("SIGINT", onSignal);
      proc?.off("SIGTERM", onSignal);
    },
  };
}
