/**
 * The before-VALIDATE hook: a shell command (e.g. remount yas3fs with an empty cache). Never throws: a
 * non-zero exit, a signal or a spawn error is an outcome, with the last lines of what it printed.
 */
import { spawn } from "node:child_process";
import { describe } from "../core/errors.ts";
import { MAX_HOOK_OUTPUT } from "../core/messages.ts";
import type { HookOutcome } from "./session.ts";

export function runHook(
  command: string,
  signal: AbortSignal,
  now: () => number = Date.now,
): Promise<HookOutcome> {
  const started = now();
  return new Promise((resolve) => {
    let tail = "";
    const keep = (d: Buffer) => {
      tail = (tail + d.toString("utf8")).slice(-MAX_HOOK_OUTPUT);
    };
    let settled = false;
    const settle = (o: Omit<HookOutcome, "durationMs" | "outputTail"> & { extra?: string }) => {
      if (settled) return;
      settled = true;
      const outputTail = (
        o.extra ? `${tail}${tail && !tail.endsWith("\n") ? "\n" : ""}${o.extra}` : tail
      ).slice(-MAX_HOOK_OUTPUT);
      resolve({
        ok: o.ok,
        exitCode: o.exitCode,
        signal: o.signal,
        outputTail,
        durationMs: Math.max(0, now() - started),
      });
    };
    const child = spawn("/bin/sh", ["-c", command], { stdio: ["ignore", "pipe", "pipe"], signal });
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (err) =>
      settle({
        ok: false,
        exitCode: null,
        signal: null,
        extra: `could not run ${command}: ${describe(err)}`,
      }),
    );
    child.on("close", (code, sig) => settle({ ok: code === 0, exitCode: code, signal: sig }));
  });
}
