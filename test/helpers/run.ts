/** Runs the bundled CLI as a real process and follows its JSON log lines. */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CLI = path.resolve(fileURLToPath(new URL("../../dist/s3-bucket-loader.mjs", import.meta.url)));

/**
 * The keys every test program presents to its emulator. The programs take credentials from the SDK's default
 * chain, endpoint or not, so the tests give them keys of their own: never the keys of whoever runs the tests.
 */
export const TEST_KEYS = { accessKeyId: "test", secretAccessKey: "test" } as const;

/** The environment of a test program: this one's, with the test keys in place of any credentials in it. */
export function testEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    AWS_ACCESS_KEY_ID: TEST_KEYS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_KEYS.secretAccessKey,
    ...extra,
  };
  for (const name of ["AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"]) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first JSON log line that matches; rejects if the process exits first or on timeout. */
  waitFor(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  uid?: number;
  gid?: number;
  cwd?: string;
}

export function startCli(args: string[], opts: StartOptions & { env?: Record<string, string> } = {}): Proc {
  return startScript(CLI, [...args, "--log-format", "json"], { ...opts, env: testEnv(opts.env) });
}

/**
 * Runs a Node script (a bundle) as a real process and follows its JSON log lines on stderr. The environment
 * is exactly `opts.env` when given (a program that reads its settings from its environment gets only those).
 */
export function startScript(script: string, args: string[], opts: StartOptions = {}): Proc {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: opts.env ?? testEnv(),
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid }),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  const lines: Record<string, unknown>[] = [];
  let err = "";
  let partial = "";
  const waiters: {
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const p of parts) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(p);
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitFor(pred, timeoutMs = 60_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting; stderr:\n${err.slice(-3000)}`)),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        exited.then(({ code }) => {
          clearTimeout(timer);
          reject(new Error(`exited with ${code} before the line came; stderr:\n${err.slice(-3000)}`));
        });
      });
    },
  };
}

/** When the tests run as root, unprivileged processes run as `nobody` (so that file modes bite). */
export function unprivileged(): { uid?: number; gid?: number } {
  return process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
}

export interface LocalRun extends Proc {
  readonly reportFile: string;
  /** The JSON report the run wrote. */
  report(): Promise<import("../../master/report.ts").RunReport>;
}

/**
 * `local` against the test's emulator: queues named after `name`, the state and the report under `dir`;
 * `args` adds or overrides flags.
 */
export function startLocal(o: {
  readonly endpoint: string;
  readonly dir: string;
  readonly name: string;
  readonly source: string;
  readonly target: string;
  readonly args?: readonly string[];
  readonly as?: { uid?: number; gid?: number };
}): LocalRun {
  const reportFile = `${o.dir}/${o.name}.json`;
  const proc = startCli(
    [
      "local",
      "--endpoint-url",
      o.endpoint,
      "--source",
      o.source,
      "--target",
      o.target,
      "--report",
      reportFile,
      "--state-dir",
      `${o.dir}/state-${o.name}`,
      "--name-prefix",
      o.name,
      ...(o.args ?? []),
    ],
    o.as ?? {},
  );
  return {
    ...proc,
    reportFile,
    report: async () => JSON.parse(await readFile(reportFile, "utf8")),
  };
}
