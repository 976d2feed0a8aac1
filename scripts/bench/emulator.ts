/**
 * One emulator for the whole benchmark (our runs and rclone's go to the same one), started in a child process
 * on 127.0.0.1 with a record of SQS requests that the benchmark reads per time window.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { needsSqliteStub } from "../../local/emulator.ts";

export interface SqsCounts {
  readonly total: number;
  readonly byAction: Readonly<Record<string, number>>;
  readonly byQueue: Readonly<Record<string, number>>;
}

export interface BenchEmulator {
  readonly url: string;
  sqsRequests(fromMs: number, toMs: number): Promise<SqsCounts>;
  stop(): Promise<void>;
}

export async function startBenchEmulator(): Promise<BenchEmulator> {
  const server = fileURLToPath(new URL("./counting-emulator.mjs", import.meta.url));
  const stub = fileURLToPath(new URL("../../local/sqlite-stub.mjs", import.meta.url));
  const child = spawn(process.execPath, [...(needsSqliteStub() ? ["--import", stub] : []), server], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the emulator did not start: ${err}`)), 15_000);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /EMULATOR_URL=(\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => reject(new Error(`the emulator exited with ${code}: ${err}`)));
  });
  return {
    url,
    async sqsRequests(fromMs, toMs) {
      const res = await fetch(`${url}/_bench/sqs?from=${Math.floor(fromMs)}&to=${Math.ceil(toMs)}`);
      return (await res.json()) as SqsCounts;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
