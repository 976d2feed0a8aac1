// Bundles the programs with esbuild: the CLI (every command) and the worker on its own (the fleet's asset).
// Target: Node 22 (the runtime we ship for); the code also runs on Node 20.
import { copyFile, mkdir } from "node:fs/promises";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  target: "node22",
  format: "esm",
  sourcemap: true,
  legalComments: "none",
  // No comments and no indentation: a smaller bundle to parse at every start, and pure ASCII, which V8 keeps
  // as one byte per character (one non-ASCII comment doubles the source text every process holds).
  minifyWhitespace: true,
  charset: "ascii",
  logLevel: "warning",
  // The emulator is only for local runs and stays a dependency; createRequire lets bundled CJS packages load.
  external: ["fauxqs"],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
};

await mkdir("dist", { recursive: true });
await Promise.all([
  build({ ...common, entryPoints: ["cli/main.ts"], outfile: "dist/s3-bucket-loader.mjs" }),
  build({ ...common, entryPoints: ["cli/worker-main.ts"], outfile: "dist/worker.mjs" }),
  copyFile("local/emulator-server.mjs", "dist/emulator-server.mjs"),
  copyFile("local/sqlite-stub.mjs", "dist/sqlite-stub.mjs"),
]);
