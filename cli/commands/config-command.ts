/**
 * `s3-bucket-loader config import FILE [--out FILE]`: the original tool's properties as our configuration
 * file (YAML), for `--config`. Prints it when no `--out` is given.
 */
import fs from "node:fs/promises";
import type { CommandModule } from "yargs";
import { ConfigError } from "../../core/errors.ts";
import { importProperties } from "../properties-import.ts";

const importCommand: CommandModule = {
  command: "import <properties>",
  describe:
    "read the original tool's s3BucketLoader.properties and write ours (YAML), saying what has no equivalent",
  builder: (y) =>
    y
      .positional("properties", { type: "string", describe: "the original's properties file" })
      .option("out", { type: "string", describe: "write the YAML here (default: print it)" })
      .option("force", { type: "boolean", describe: "overwrite --out if it exists" }),
  handler: async (argv) => {
    const file = String(argv.properties);
    const text = await fs.readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(
        `<properties>: got ${JSON.stringify(file)}; cannot read it (${err.code ?? err.message})`,
      );
    });
    const r = importProperties(text, file.split("/").pop() ?? file);
    const out = argv.out as string | undefined;
    if (!out) {
      process.stdout.write(r.yaml);
    } else {
      await fs
        .writeFile(out, r.yaml, { flag: argv.force ? "w" : "wx" })
        .catch((err: NodeJS.ErrnoException) => {
          if (err.code === "EEXIST")
            throw new ConfigError(
              `--out: got ${JSON.stringify(out)}; it exists: give another file or add --force`,
            );
          throw err;
        });
      process.stderr.write(
        `wrote ${out}: ${Object.keys(r.settings).length} settings from ${r.carried.length} properties; ` +
          `${r.dropped.length} properties have no equivalent (listed in it as comments)\n`,
      );
    }
    process.exitCode = 0;
  },
};

export const configCommand: CommandModule = {
  command: "config",
  describe: "configuration files: import the original tool's properties",
  builder: (y) => y.command(importCommand).demandCommand(1, "name a config command: import"),
  handler: () => {},
};
