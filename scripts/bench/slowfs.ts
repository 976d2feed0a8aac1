/**
 * A source that answers like an NFS filer: slowfs.c, a read-only FUSE passthrough that waits a fixed time
 * before every operation a filer would answer with a round trip. Built with the system's C compiler.
 */
import { existsSync, statSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { aptInstall, ensureCommand, mustRun, run } from "./proc.ts";

export interface SlowMount {
  readonly mountpoint: string;
  unmount(): Promise<void>;
}

/** Builds the binary (when missing or older than its source); returns why it cannot, or the binary. */
export async function buildSlowfs(binDir: string): Promise<{ binary: string } | { reason: string }> {
  if (!existsSync("/dev/fuse"))
    return { reason: "/dev/fuse is missing (no FUSE in this kernel or container)" };
  for (const [cmd, pkg] of [
    ["cc", "gcc"],
    ["pkg-config", "pkg-config"],
    ["fusermount3", "fuse3"],
  ] as const) {
    const why = await ensureCommand(cmd, pkg);
    if (why) return { reason: why };
  }
  if ((await run("pkg-config", ["--exists", "fuse3"])).code !== 0) {
    const why = await aptInstall("libfuse3-dev");
    if ((await run("pkg-config", ["--exists", "fuse3"])).code !== 0) {
      return { reason: `libfuse3-dev is needed to build the slow source${why ? `: ${why}` : ""}` };
    }
  }
  const source = fileURLToPath(new URL("./slowfs.c", import.meta.url));
  const binary = path.join(binDir, "slowfs");
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return { binary };
  await fs.mkdir(binDir, { recursive: true });
  const flags = (await mustRun("pkg-config", ["--cflags", "--libs", "fuse3"])).stdout.trim().split(/\s+/);
  const cc = await run("cc", ["-O2", "-Wall", source, ...flags, "-o", binary]);
  if (cc.code !== 0) return { reason: `building slowfs failed: ${cc.stderr.trim()}` };
  return { binary };
}

/** Mounts `source` read-only at `mountpoint` with `delayUs` per operation; up to 64 operations at once. */
export async function mountSlow(
  binary: string,
  source: string,
  mountpoint: string,
  delayUs: number,
): Promise<SlowMount> {
  await fs.mkdir(mountpoint, { recursive: true });
  await run("fusermount3", ["-u", "-q", mountpoint]);
  await mustRun(binary, [source, String(delayUs), mountpoint, "-o", "ro,max_threads=64"]);
  return {
    mountpoint,
    async unmount() {
      const r = await run("fusermount3", ["-u", mountpoint]);
      if (r.code !== 0) await run("fusermount3", ["-u", "-z", mountpoint]);
    },
  };
}
