// Bundles the programs with esbuild: the CLI (every command) and the worker on its own (the fleet's asset).
// Target: Node 22 (the runtime we ship for); the code also runs on Node 20.
import { mkdir } from "node:fs/promises";
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

/**
 * The emulator imports node:sqlite (Node >= 22.5) for a persistence that local runs never use: in its bundle
 * the import is a stub that fails only if persistence is asked for, so that it loads on older Node too.
 */
const noSqlite = {
  name: "no-sqlite",
  setup(b) {
    b.onResolve({ filter: /^node:sqlite$/ }, () => ({ path: "node:sqlite", namespace: "sqlite-stub" }));
    b.onLoad({ filter: /.*/, namespace: "sqlite-stub" }, () => ({
      contents:
        "export class DatabaseSync { constructor() { throw new Error('the embedded emulator keeps no state on disk'); } }",
    }));
  },
};

await mkdir("dist", { recursive: true });
await Promise.all([
  build({ ...common, entryPoints: ["cli/main.ts"], outfile: "dist/s3-bucket-loader.mjs" }),
  build({ ...common, entryPoints: ["cli/worker-main.ts"], outfile: "dist/worker.mjs" }),
  // The embedded emulator as one file, its dependencies included: loading fauxqs's hundreds of modules one by
  // one (through a loader hook on Node < 22.5) took about three times as long as the whole program's start.
  build({
    ...common,
    sourcemap: false,
    external: [],
    plugins: [noSqlite],
    entryPoints: ["local/emulator-server.mjs"],
    outfile: "dist/emulator.mjs",
  }),
]);
