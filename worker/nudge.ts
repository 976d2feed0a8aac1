/** A wake-up for a loop that waits for "something changed", a timeout or an abort, whichever comes first. */
export class Nudge {
  private waiters: (() => void)[] = [];
  private pending = false;

  /** Wakes the current wait, or the next one if none is waiting (a nudge is never lost). */
  nudge(): void {
    const w = this.waiters;
    this.waiters = [];
    if (w.length === 0) this.pending = true;
    for (const resolve of w) resolve();
  }

  /** Resolves on a nudge, after `ms`, or when `signal` aborts; never rejects. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pending || signal?.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      this.waiters.push(done);
    });
  }
}
