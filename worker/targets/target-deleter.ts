/**
 * `--delete`'s removals, for the targets a worker writes: an S3 target's yas3fs objects (a directory's marker
 * with it) or a directory target's files and directories. Directories go last and deepest first, so that a
 * removed directory's removed children are gone before it; one that still holds something else is reported,
 * never emptied.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { errnoOf } from "../../core/errors.ts";
import type { ObjectStore } from "../../core/object-store.ts";
import type { TargetDeleter } from "../../core/ports.ts";
import { isS3Url, parseS3Url } from "../../core/s3-url.ts";
import { checkTocPath } from "../../core/toc-path.ts";
import { keyOf } from "./yas3fs-format.ts";

type Gone = Parameters<TargetDeleter["remove"]>[0][number];

export function makeTargetDeleter(target: string, storeFor: (bucket: string) => ObjectStore): TargetDeleter {
  if (isS3Url(target)) {
    const { bucket, prefix } = parseS3Url(target);
    return s3Deleter(storeFor(bucket), prefix, target);
  }
  return directoryDeleter(target);
}

function s3Deleter(store: ObjectStore, prefix: string, description: string): TargetDeleter {
  return {
    description,
    async remove(entries, signal) {
      const byKey = new Map<string, string>();
      for (const e of entries) if (e.path !== ".") byKey.set(keyOf(prefix, e.path, e.kind), e.path);
      const refused = await store.deleteMany([...byKey.keys()], signal);
      return refused.map((r) => ({ path: byKey.get(r.key) ?? r.key, reason: `S3 refused: ${r.reason}` }));
    },
  };
}

function directoryDeleter(root: string): TargetDeleter {
  return {
    description: root,
    async remove(entries, signal) {
      const failed: { path: string; reason: string }[] = [];
      const one = async (e: Gone) => {
        signal?.throwIfAborted();
        const checked = checkTocPath(e.path);
        if (!checked.ok) return failed.push({ path: e.path, reason: checked.reason });
        const where = path.join(root, ...checked.segments);
        try {
          if (e.kind === "dir") await fs.rmdir(where);
          else await fs.unlink(where);
        } catch (err) {
          const code = errnoOf(err);
          if (code === "ENOENT") return; // already gone
          const why =
            code === "ENOTEMPTY" || code === "EEXIST"
              ? "the directory still holds entries this run did not remove: left in place"
              : code === "EISDIR"
                ? "a directory is there now, not the file the previous run wrote: left in place"
                : `${code ?? "error"}: ${(err as Error).message}`;
          failed.push({ path: e.path, reason: why });
        }
      };
      const dirs = entries.filter((e) => e.kind === "dir" && e.path !== ".");
      for (const e of entries) if (e.kind !== "dir") await one(e);
      dirs.sort((a, b) => depth(b.path) - depth(a.path));
      for (const e of dirs) await one(e);
      return failed;
    },
  };
}

function depth(p: string): number {
  let n = 0;
  for (const c of p) if (c === "/") n++;
  return n;
}
