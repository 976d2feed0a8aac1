/**
 * Starts the embedded emulator in a child process (so its work does not compete with the master's event loop)
 * and returns its URL. The child exits when we stop it or when this process goes away.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface Emulator {
  readonly url: string;
  stop(): Promise<void>;
}

/** The keys the programs present to the embedded emulator, which accepts any. */
export const EMULATOR_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" } as const;

export function needsSqliteStub(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major < 22 || (major === 22 && minor < 5);
}

/** The embedded emulator must print its address within this long unless told otherwise. */
const START_TIMEOUT_MS = 15_000;

export async function startEmulator(opts: { port?: number; timeoutMs?: number } = {}): Promise<Emulator> {
  const child = spawn(process.execPath, [...serverArgs(), String(opts.port ?? 0)], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `the emulator did not start within ${opts.timeoutMs ?? START_TIMEOUT_MS} ms: ${err.trim()}`,
        ),
      );
    }, opts.timeoutMs ?? START_TIMEOUT_MS);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /EMULATOR_URL=(\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the emulator exited with ${code}: ${err.trim()}`));
    });
  });
  child.removeAllListeners("exit");
  return { url, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The server: bundled beside the CLI bundle in dist/ (fauxqs included, node:sqlite stubbed in), or its source
 * beside this module, which loads fauxqs from node_modules and on Node < 22.5 needs the stub as a loader hook.
 */
function serverArgs(): string[] {
  const bundled = fileURLToPath(new URL("./emulator.mjs", import.meta.url));
  if (existsSync(bundled)) return [bundled];
  const source = fileURLToPath(new URL("./emulator-server.mjs", import.meta.url));
  const stub = fileURLToPath(new URL("./sqlite-stub.mjs", import.meta.url));
  return needsSqliteStub() ? ["--import", stub, source] : [source];
}
