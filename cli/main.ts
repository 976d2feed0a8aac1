#!/usr/bin/env node
/** `s3-bucket-loader`: the one command line: `local`, `master`, `worker`, and `plan`, `status`, `config`. */
import { localSettings, workerSettings } from "../core/config.ts";
import { localCommand } from "../local/cli.ts";
import { masterCommand } from "../master/cli.ts";
import { masterCliSettings } from "../master/fleet-settings.ts";
import { runExtraSettings } from "../master/run-extras.ts";
import { planSettings } from "../plan/plan-settings.ts";
import { workerCommand } from "../worker/cli.ts";
import { configCommand } from "./config-command.ts";
import { planCommand } from "./plan-command.ts";
import { runCli } from "./run-cli.ts";
import { statusCommand } from "./status-command.ts";

await runCli(
  [localCommand, masterCommand, workerCommand, planCommand, statusCommand, configCommand],
  process.argv.slice(2),
  { settingTables: [workerSettings, masterCliSettings, localSettings, runExtraSettings, planSettings] },
);
