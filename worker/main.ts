#!/usr/bin/env node
/** The worker program on its own (the bundle an EC2 worker runs): `node worker.mjs --source … --target …`. */
import { runCli } from "../cli/run-cli.ts";
import { workerCommand } from "./cli.ts";

await runCli([{ ...workerCommand, command: "$0" }], process.argv.slice(2));
