#!/usr/bin/env node
import { workerCommand } from "./commands/worker-command.ts";
/** The worker program on its own (the bundle an EC2 worker runs): `node worker.mjs --source … --target …`. */
import { runCli } from "./run-cli.ts";

await runCli([{ ...workerCommand, command: "$0" }], process.argv.slice(2));
