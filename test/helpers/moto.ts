/**
 * moto's server (CloudFormation, EC2, IAM, STS, SQS, SNS, S3 in one process) on a free port of 127.0.0.1, for
 * the tests that need what the Node emulator lacks. It is addressed as `localhost`: moto's CloudFormation
 * reads a stack's template URL from its own S3 only when the URL names that host.
 */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export interface Moto {
  /** `http://localhost:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The environment a program needs to talk to this server with the given keys. */
  env(keys?: { readonly accessKeyId: string; readonly secretAccessKey: string }): Record<string, string>;
  /** Turns IAM enforcement on: from now on only keys of IAM users created in this server work. */
  enforceIam(): Promise<void>;
  /** Turns it off again: any keys work. */
  relaxIam(): Promise<void>;
  stop(): Promise<void>;
}

export const MOTO_ACCOUNT = "123456789012";
export const MOTO_REGION = "us-east-1";

/** Keys moto accepts while IAM is not enforced (any are). */
export const MOTO_KEYS = { accessKeyId: "test", secretAccessKey: "test" } as const;

export async function startMoto(o: { readonly timeoutMs?: number } = {}): Promise<Moto> {
  const port = await freePort();
  const child = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    // moto logs every request on stderr: keep only the tail, for the error message.
    err = (err + d).slice(-4000);
  });
  const spawnError = new Promise<never>((_, reject) =>
    child.once("error", (e) =>
      reject(
        new Error(
          `moto_server could not be started (${e.message}): it must be on PATH (npm test checks for it)`,
        ),
      ),
    ),
  );
  const url = `http://localhost:${port}`;
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  const up = (async () => {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${err}`);
      const ok = await fetch(`http://127.0.0.1:${port}/moto-api/`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`moto_server did not answer on port ${port} within ${o.timeoutMs ?? 30_000} ms: ${err}`);
  })();
  try {
    await Promise.race([up, spawnError]);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return {
    url,
    port,
    env: (keys = MOTO_KEYS) => ({
      AWS_ENDPOINT_URL: url,
      AWS_REGION: MOTO_REGION,
      AWS_DEFAULT_REGION: MOTO_REGION,
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    }),
    // The body is how many more requests go unchecked: 0, from now on; inf, never checked.
    enforceIam: () => resetAuth(port, "0"),
    relaxIam: () => resetAuth(port, "inf"),
    stop: () => stopChild(child),
  };
}

async function resetAuth(port: number, uncheckedRequests: string): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${port}/moto-api/reset-auth`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: uncheckedRequests,
  });
  if (!r.ok) throw new Error(`moto reset-auth answered ${r.status}: ${await r.text()}`);
}

/** A port nothing listens on now (the OS picks it; moto binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
