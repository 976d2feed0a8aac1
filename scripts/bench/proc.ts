/** Running commands and timing them: the one place the benchmark starts other programs. */
import { spawn, spawnSync } from "node:child_process";

export interface Finished {
  readonly code: number | null;
  readonly ms: number;
  /** User + system CPU seconds of the command and every descendant it waited for (with `measureCpu`). */
  readonly cpuSec: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Killed (SIGKILL) after this long. */
  readonly timeoutMs?: number;
  /** Drop stdout instead of keeping it (for commands that print one line per file). */
  readonly discardStdout?: boolean;
  /**
   * Measure the CPU the command used, its waited-for descendants included: it runs under `bash`, whose
   * `times` prints the children's user and system time on a pipe of its own once the command has exited.
   */
  readonly measureCpu?: boolean;
}

const CPU_WRAPPER = '"$@"; rc=$?; times >&3; exit $rc';

/** Runs a command to its end; `ms` is wall time from spawn to exit. Never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const [file, argv] = o.measureCpu ? ["bash", ["-c", CPU_WRAPPER, "bash", cmd, ...args]] : [cmd, args];
    const child = spawn(file, argv, {
      env: o.env ?? process.env,
      cwd: o.cwd,
      stdio: ["ignore", o.discardStdout ? "ignore" : "pipe", "pipe", o.measureCpu ? "pipe" : "ignore"],
    });
    let stdout = "";
    let stderr = "";
    let times = "";
    const timesPipe = child.stdio[3];
    if (timesPipe && "setEncoding" in timesPipe) {
      timesPipe.setEncoding("utf8").on("data", (d: string) => {
        times += d;
      });
    }
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 1_000_000) stderr += d;
    });
    const timer = o.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), o.timeoutMs) : undefined;
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        code,
        ms: performance.now() - started,
        cpuSec: o.measureCpu ? childCpu(times) : null,
        stdout,
        stderr,
      });
    });
  });
}

/** bash's `times`: a line for the shell, a line for its children, each `user system` as `1m2.345s`. */
export function childCpu(times: string): number | null {
  const line = times.trim().split("\n")[1];
  const parts = line?.trim().split(/\s+/).map(seconds);
  if (parts?.length !== 2 || parts.some((p) => p === null)) return null;
  return (parts[0] ?? 0) + (parts[1] ?? 0);
}

function seconds(t: string): number | null {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** Runs a command and throws with its output when it fails. */
export async function mustRun(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<Finished> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited with ${r.code}: ${r.stderr.trim().slice(-2000)}`);
  }
  return r;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/**
 * Makes sure a command exists: installs its Debian package when running as root, else returns why it cannot.
 * Returns null when the command is there.
 */
export async function ensureCommand(cmd: string, aptPackage: string): Promise<string | null> {
  if (hasCommand(cmd)) return null;
  const why = await aptInstall(aptPackage);
  if (why) return `${cmd} is missing: ${why}`;
  return hasCommand(cmd) ? null : `${cmd} is still missing after installing ${aptPackage}`;
}

/** Installs a Debian package (running apt-get update first if the install fails); returns why it failed. */
export async function aptInstall(aptPackage: string): Promise<string | null> {
  if (process.getuid?.() !== 0) return `installing ${aptPackage} needs root`;
  process.stderr.write(`installing ${aptPackage} with apt-get …\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let r = await run("apt-get", ["install", "-y", "-qq", aptPackage], { env });
  if (r.code !== 0) {
    await run("apt-get", ["update", "-qq"]);
    r = await run("apt-get", ["install", "-y", "-qq", aptPackage], { env });
  }
  return r.code === 0 ? null : `apt-get install ${aptPackage} failed: ${r.stderr.trim().slice(-500)}`;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}
