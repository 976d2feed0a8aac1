#!/usr/bin/env node
/** The master program on its own: `node master.mjs --source … --topic-arn … --workers N`. */
import { runCli } from "../cli/run-cli.ts";
import { masterCommand } from "./cli.ts";

await runCli([{ ...masterCommand, command: "$0" }], process.argv.slice(2));
