#!/usr/bin/env node
/** `s3-bucket-loader`: the one command line, with `local`, `master` and `worker`. */
import { localCommand } from "../local/cli.ts";
import { masterCommand } from "../master/cli.ts";
import { workerCommand } from "../worker/cli.ts";
import { runCli } from "./run-cli.ts";

await runCli([localCommand, masterCommand, workerCommand], process.argv.slice(2));
