#!/usr/bin/env node
/** `s3-bucket-loader`: the one command line: `local`, `master`, `worker`, and `plan`, `status`, `config`. */
import { localSettings } from "../local/settings.ts";
import { masterCliSettings } from "../master/settings.ts";
import { planSettings } from "../plan/settings.ts";
import { workerSettings } from "../worker/settings.ts";
import { configCommand } from "./commands/config-command.ts";
import { localCommand } from "./commands/local-command.ts";
import { masterCommand } from "./commands/master-command.ts";
import { planCommand } from "./commands/plan-command.ts";
import { statusCommand } from "./commands/status-command.ts";
import { workerCommand } from "./commands/worker-command.ts";
import { runCli } from "./run-cli.ts";
import { runExtraSettings } from "./run-extras.ts";

// Not a top-level await: the bundle is CommonJS (see scripts/build.mjs). runCli sets the exit code itself.
void runCli(
  [localCommand, masterCommand, workerCommand, planCommand, statusCommand, configCommand],
  process.argv.slice(2),
  { settingTables: [workerSettings, masterCliSettings, localSettings, runExtraSettings, planSettings] },
);
