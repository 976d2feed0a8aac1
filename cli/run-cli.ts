/**
 * Runs yargs over a set of commands and maps failures to exit codes: 2 for usage and configuration errors
 * (with the message naming the setting), 1 for anything unexpected. Handlers set `process.exitCode`.
 */
import yargs, { type CommandModule } from "yargs";
import { ConfigError, describe } from "../core/errors.ts";

export async function runCli(commands: CommandModule[], args: string[]): Promise<void> {
  let y = yargs(args)
    .scriptName("s3-bucket-loader")
    .strict()
    // Flags are named as they are meant: `--no-workers-timeout-sec` is a setting, not a negation.
    .parserConfiguration({ "boolean-negation": false })
    .demandCommand(1, "name a command: local, master or worker")
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err, yy) => {
      if (err) throw err;
      process.stderr.write(`${yy.help() ? "" : ""}error: ${msg}\n(run with --help for the options)\n`);
      process.exit(2);
    });
  for (const c of commands) y = y.command(c);
  try {
    await y.parseAsync();
  } catch (err) {
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
