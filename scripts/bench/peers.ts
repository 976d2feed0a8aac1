/** The peers, each run as its users run it, timed from spawn to exit. */
import { type Finished, mustRun } from "./proc.ts";

export function findPrintf(source: string): Promise<Finished> {
  return mustRun("find", [source, "-printf", "%s %p\\n"], { discardStdout: true });
}

export function rsyncArchive(source: string, target: string): Promise<Finished> {
  return mustRun("rsync", ["-a", `${source}/`, `${target}/`], { measureCpu: true });
}

export function cpArchive(source: string, target: string): Promise<Finished> {
  return mustRun("cp", ["-a", `${source}/.`, target]);
}

/**
 * rclone (Debian 1.60) against the emulator, with the settings that work there: provider Other, path style,
 * 5 MiB cutoff and chunks, no bucket check, and no custom CA bundle (rclone refuses one).
 */
export function rcloneEnv(endpoint: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG_BENCH_TYPE: "s3",
    RCLONE_CONFIG_BENCH_PROVIDER: "Other",
    RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_BENCH_REGION: "us-east-1",
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: "bench",
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: "bench",
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: "true",
  };
  delete env.AWS_CA_BUNDLE;
  return env;
}

export function rcloneMkBucket(endpoint: string, bucket: string): Promise<Finished> {
  return mustRun("rclone", ["mkdir", `bench:${bucket}`], { env: rcloneEnv(endpoint) });
}

export function rcloneCopy(endpoint: string, source: string, bucketPrefix: string): Promise<Finished> {
  return mustRun(
    "rclone",
    [
      "copy",
      source,
      `bench:${bucketPrefix}`,
      ...["--transfers", "32", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-no-check-bucket"],
      // rclone does not copy symlinks (it warns for each without -L): say so once, not per link.
      "--skip-links",
    ],
    { env: rcloneEnv(endpoint), measureCpu: true },
  );
}
