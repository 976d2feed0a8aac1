/**
 * The original's copier, done per batch: one `rsync -a --inplace --files-from` for a whole TOC batch instead of
 * one rsync per file. `--inplace` because yas3fs turns rsync's temporary file and rename into an S3 copy and
 * delete and may lose the metadata on the way. rsync's exit code says little about which file failed, so each
 * entry is then checked in the target, and rsync's own lines about a path become that entry's reason.
 *
 * rsync reads the source by path, and a path can be made to lead elsewhere (a directory of the source swapped
 * for a symlink) while it runs. Each entry is checked to be the one the crawl saw (type, device, inode) before
 * rsync is given it and again after; one that fails either check is reported, and what rsync wrote for it is
 * removed from the target. A swap made and undone while rsync itself runs cannot be seen this way (the `fs`
 * copier reads from the file it checked).
 */
import { spawn } from "node:child_process";
import type { Stage, TocEntry } from "../../core/messages.ts";
import { reasonOf } from "./rooted-tree.ts";
import type { EntryOutcome } from "./target.ts";

/** What rsync needs of the directory target whose batch writer it is (fs-target.ts). */
export interface RsyncTree {
  readonly opts: { readonly sourceRoot: string; readonly targetRoot: string };
  /** Resolves a TOC path on both sides, refusing anything that would leave either root. */
  paths(rel: string): Promise<{ src: string; dst: string } | { reason: string }>;
  /** Why what the source path leads to now is not the entry the crawl saw, or null. */
  sourceMoved(entry: TocEntry, src: string): Promise<string | null>;
  /** Removes what rsync wrote for an entry that turned out not to be the one crawled. */
  removeCopy(dst: string): Promise<void>;
  check(entry: TocEntry): Promise<EntryOutcome>;
}

export async function rsyncBatch(
  target: RsyncTree,
  entries: readonly TocEntry[],
  stage: Stage,
  signal: AbortSignal,
): Promise<EntryOutcome[]> {
  const outcomes: (EntryOutcome | undefined)[] = new Array(entries.length);
  const send: TocEntry[] = [];
  for (const [i, e] of entries.entries()) {
    let p: Awaited<ReturnType<RsyncTree["paths"]>>;
    try {
      p = await target.paths(e.path);
    } catch (err) {
      // e.g. ENOTDIR from realpath: a file in the target where the source has a directory
      outcomes[i] = { status: "failed", bytes: 0, reason: reasonOf(err, "resolve") };
      continue;
    }
    if ("reason" in p) {
      outcomes[i] = { status: "failed", bytes: 0, reason: p.reason };
      continue;
    }
    const moved = await target.sourceMoved(e, p.src);
    if (moved) outcomes[i] = { status: "failed", bytes: 0, reason: moved };
    else send.push(e);
  }
  let result: RsyncResult = { code: 0, stderr: "" };
  const roots = [`${target.opts.sourceRoot}/`, `${target.opts.targetRoot}/`];
  // --atimes: rsync sends atimes in whole seconds (protocol 32), truncated; mtimes it keeps to the nanosecond.
  const common = ["-a", "--atimes", "--numeric-ids"];
  const others = send.filter((e) => e.path !== ".");
  if (others.length < send.length) {
    // The root alone: `--dirs` copies the contents of a directory named "." (one level), so everything in
    // the root is excluded and only the root's own owner, mode and times are set.
    result = await runRsync([...common, "--dirs", "--exclude=/*", "--", ...roots], "", signal);
  }
  if (others.length > 0 && (result.code === 0 || result.code === 23 || result.code === 24)) {
    const args = [...common, "--inplace", "--from0", "--files-from=-"];
    if (stage === "dirs") args.push("--dirs");
    // "./": rsync takes a --files-from line that starts with "#" or ";" for a comment, even with --from0.
    const list = others.map((e) => `./${e.path}\0`).join("");
    const r = await runRsync([...args, "--", ...roots], list, signal);
    result = { code: r.code !== 0 ? r.code : result.code, stderr: result.stderr + r.stderr };
  }
  if (result.code !== 0 && result.code !== 23 && result.code !== 24) {
    const reason = `rsync exited with ${result.code}: ${lastLine(result.stderr)}`;
    return entries.map((_, i) => outcomes[i] ?? { status: "failed", bytes: 0, reason });
  }
  // Check every entry that rsync was given: the target tells what arrived.
  const lines = result.stderr.split("\n").filter((l) => l.startsWith("rsync"));
  for (const [i, e] of entries.entries()) {
    if (outcomes[i]) continue;
    const p = await target.paths(e.path);
    const moved = "reason" in p ? p.reason : await target.sourceMoved(e, p.src);
    if (moved) {
      // What rsync read may not be the entry: it does not stay in the target.
      if (!("reason" in p) && e.kind !== "dir") await target.removeCopy(p.dst);
      outcomes[i] = { status: "failed", bytes: 0, reason: moved };
      continue;
    }
    const checked = await target.check(e);
    if (checked.status === "ok") {
      outcomes[i] = { status: "ok", bytes: e.kind === "file" ? checked.bytes : 0 };
      continue;
    }
    const said = lines.find((l) => l.includes(`"${e.path}"`) || l.includes(`/${e.path}"`));
    outcomes[i] = {
      status: "failed",
      bytes: 0,
      reason: said ? `${checked.reason} (${said})` : (checked.reason ?? ""),
    };
  }
  return outcomes.map((o) => o ?? { status: "failed", bytes: 0, reason: "not checked" });
}

interface RsyncResult {
  readonly code: number;
  readonly stderr: string;
}

function runRsync(args: string[], stdin: string, signal: AbortSignal): Promise<RsyncResult> {
  return new Promise((resolve) => {
    const child = spawn("rsync", args, { stdio: ["pipe", "ignore", "pipe"], signal });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      if (stderr.length < 64_000) stderr += d;
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "ENOENT" ? "rsync is not installed (install it, or use --copier fs)" : err.message;
      resolve({ code: 127, stderr: why });
    });
    child.on("close", (code) => resolve({ code: code ?? 1, stderr }));
    // rsync stopped reading (it exited early): its exit code and stderr say why; keep this line with them.
    child.stdin.on("error", (err) => {
      stderr += `\nrsync input: ${err.message}`;
    });
    child.stdin.end(stdin);
  });
}

function lastLine(s: string): string {
  return s.trim().split("\n").pop() ?? "";
}
