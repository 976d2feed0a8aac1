/**
 * Tells live yas3fs mounts of the target about new objects, through yas3fs's own SNS topic: a message
 * `["all", "reset", "/dir"]` drops that directory's cached listing and entries on every node ("all" is a node id
 * no node has, so none ignores it). Directories touched are gathered and sent at most once a second; when more
 * than `maxPerFlush` are pending, one reset of their deepest common ancestor goes instead, so that thousands of
 * files cannot flood the topic (yas3fs's own per-file messages could not keep up with bulk loads).
 */
import type { Logger } from "../core/log.ts";
import type { Topic } from "../core/ports.ts";

export class Yas3fsNotifier {
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> = Promise.resolve();
  published = 0;

  constructor(
    private readonly topic: Topic,
    private readonly log: Logger,
    private readonly opts: { everyMs: number; maxPerFlush: number },
  ) {}

  /** Records the directories of entries written (TOC paths, relative to the mount's root). */
  touched(paths: readonly string[]): void {
    for (const p of paths) this.pending.add(p === "." ? "/" : `/${parentOf(p)}`.replace(/\/$/, "") || "/");
    if (!this.timer && this.pending.size > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.sending = this.sending.then(() => this.flush());
      }, this.opts.everyMs);
      this.timer.unref();
    }
  }

  /** Sends what is pending now (and waits for earlier sends). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.sending;
    await this.flush();
  }

  private async flush(): Promise<void> {
    const dirs = [...this.pending];
    this.pending = new Set();
    if (dirs.length === 0) return;
    const resets = resetsFor(dirs, this.opts.maxPerFlush);
    for (const dir of resets) {
      try {
        await this.topic.publish(JSON.stringify(["all", "reset", dir]));
        this.published++;
      } catch (err) {
        this.log.warn(`could not notify yas3fs of ${dir}: ${(err as Error).message}`);
      }
    }
  }
}

/** The directories to reset: all of them, or their deepest common ancestor when there are too many. */
export function resetsFor(dirs: readonly string[], max: number): string[] {
  const unique = [...new Set(dirs)].sort();
  if (unique.length <= max) return unique;
  const split = unique.map((d) => d.split("/").filter(Boolean));
  const common: string[] = [];
  for (let i = 0; ; i++) {
    const seg = split[0]?.[i];
    if (seg === undefined || !split.every((s) => s[i] === seg)) break;
    common.push(seg);
  }
  return [`/${common.join("/")}`];
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
}
