#!/usr/bin/env node
/** `s3-bucket-loader`: the one command line: `local`, `master`, `worker`, and `plan`, `status`, `config`. */
import { localSettings } from "../local/settings.ts";
import { masterCliSettings } from "../master/settings.ts";
import { planSettings } from "../plan/settings.ts";
import { workerSettings } from "../worker/settings.ts";
import { runCli } from "./run-cli.ts";
import { runExtraSettings } from "./run-extras.ts";

// Not a top-level await: the bundle is CommonJS (see scripts/build.mjs). runCli sets the exit code itself.
// Each command's modules load when it runs: `local` does not pay for `plan`'s, nor `status` for the master's.
void runCli(
  [
    { name: "local", load: async () => (await import("./commands/local-command.ts")).localCommand },
    { name: "master", load: async () => (await import("./commands/master-command.ts")).masterCommand },
    { name: "worker", load: async () => (await import("./commands/worker-command.ts")).workerCommand },
    { name: "plan", load: async () => (await import("./commands/plan-command.ts")).planCommand },
    { name: "status", load: async () => (await import("./commands/status-command.ts")).statusCommand },
    { name: "config", load: async () => (await import("./commands/config-command.ts")).configCommand },
  ],
  process.argv.slice(2),
  { settingTables: [workerSettings, masterCliSettings, localSettings, runExtraSettings, planSettings] },
);
