/**
 * Runs yargs over a set of commands and maps failures to exit codes: 2 for usage and configuration errors
 * (with the message naming the setting), 1 for anything unexpected. Handlers set `process.exitCode`.
 * Three options belong to every command: `--config FILE` (a configuration file, checked here against every
 * setting any program has), `--json` (structured logs: `--log-format json`) and `--quiet`.
 */
import yargs, { type CommandModule } from "yargs";
import type { Setting } from "../core/config.ts";
import { checkFileNames, readConfigFile } from "../core/config-file.ts";
import { ConfigError, describe } from "../core/errors.ts";

/** The command line itself is wrong (an unknown flag, a missing command): said with a pointer to --help. */
class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * A command, loaded only when it runs (or when every command's help is shown): a start pays for the modules of
 * its own command, not for those of all six.
 */
export interface CliCommand {
  readonly name: string;
  readonly load: () => Promise<CommandModule>;
}

/** A command already loaded, as a `CliCommand`. */
export function loaded(c: CommandModule): CliCommand {
  return { name: commandName(c), load: async () => c };
}

export interface CliOptions {
  /** Every settings table of every command: a name in a `--config` file must be one of theirs. */
  readonly settingTables?: readonly Readonly<Record<string, Setting<unknown>>>[];
}

export async function runCli(
  commands: CliCommand[],
  args: string[],
  options: CliOptions = {},
): Promise<void> {
  // The command named first runs as yargs' default command, under its own name: yargs renders (and keeps) a
  // named command's whole help text each time it runs one, a tenth of a second of every program's start.
  const named = commands.find((c) => c.name === args[0]);
  const chosen = named ? await named.load() : undefined;
  let y = yargs(chosen ? args.slice(1) : args)
    .scriptName(chosen ? `s3-bucket-loader ${args[0]}` : "s3-bucket-loader")
    .strict()
    // Flags are named as they are meant: `--no-workers-timeout-sec` is a setting, not a negation.
    .parserConfiguration({ "boolean-negation": false })
    .option("config", {
      type: "string",
      describe: "read settings from this YAML or JSON file (flags and environment variables win over it)",
      global: true,
    })
    .option("json", {
      type: "boolean",
      describe: "structured JSON logs on stderr (same as --log-format json); plan prints JSON",
      global: true,
    })
    .option("quiet", {
      type: "boolean",
      describe: "warnings, errors and the outcome only: no live progress",
      global: true,
    })
    .middleware((argv) => {
      if (argv.json) {
        argv["log-format"] = "json";
        argv.logFormat = "json";
      }
      if (typeof argv.config === "string" && argv.config && options.settingTables)
        checkFileNames(readConfigFile(argv.config), options.settingTables);
    })
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  if (chosen) y = y.command({ ...chosen, command: "$0" });
  else {
    y = y.demandCommand(1, `name a command: ${commands.map((c) => c.name).join(", ")}`);
    for (const c of await Promise.all(commands.map((c) => c.load()))) y = y.command(c);
  }
  try {
    await y.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n(run with --help for the options)\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`error: ${describe(err)}\n`);
    if (err instanceof Error && err.cause) process.stderr.write(`  cause: ${describe(err.cause)}\n`);
    process.exitCode = 1;
  }
}

function commandName(c: CommandModule): string {
  return String(c.command).split(" ")[0] ?? "";
}
