#!/usr/bin/env node
/** The worker program on its own (the bundle an EC2 worker runs): `node worker.mjs --source … --target …`. */
import { describe } from "../core/errors.ts";
import { LAUNCH_FLAG, readLaunch } from "../local/worker-launch.ts";
import { workerCommand } from "./commands/worker-command.ts";
import { loaded, runCli } from "./run-cli.ts";

/** A local run hands its workers their settings within its own start-up bound (see local/worker-launch.ts). */
const LAUNCH_TIMEOUT_MS = 120_000;

// Not a top-level await: the bundle is CommonJS (see scripts/build.mjs). Failures set the exit code.
void main(process.argv.slice(2));

async function main(args: string[]): Promise<void> {
  const launched = args[0] === LAUNCH_FLAG ? await launchArgs(args.slice(1)) : args;
  if (launched) await runCli([loaded({ ...workerCommand, command: "$0" })], launched);
}

/** The arguments given, then those a local run hands over on standard input; null (exit 2) when none came. */
async function launchArgs(given: string[]): Promise<string[] | null> {
  try {
    const launch = await readLaunch(process.stdin, LAUNCH_TIMEOUT_MS);
    // The program's edge: the environment it would have been started with, set before anything reads it.
    Object.assign(process.env, launch.env);
    return [...given, ...launch.args];
  } catch (err) {
    process.stderr.write(`error: ${describe(err)}\n`);
    process.exitCode = 2;
    return null;
  }
}
