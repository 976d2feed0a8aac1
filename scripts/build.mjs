// Bundles the programs with esbuild: the CLI (every command) and the worker on its own (the fleet's asset), each
// as one CommonJS file that runs on its own (`node dist/worker.cjs`: what the stack ships), and beside it a small
// launcher (`dist/worker.mjs`, the package's bin) that runs the bundle from a V8 code cache (see cli/launcher.ts).
// Target: Node 22 (the runtime we ship for); the code also runs on Node 20.
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  target: "node22",
  sourcemap: true,
  legalComments: "none",
  // No comments and no indentation: a smaller bundle to parse at every start, and pure ASCII, which V8 keeps
  // as one byte per character (one non-ASCII comment doubles the source text every process holds).
  minifyWhitespace: true,
  charset: "ascii",
  logLevel: "warning",
};

/** A program: CommonJS, `import.meta.url` its own file's URL (the ESM sources and packages locate files by it). */
const program = {
  ...common,
  format: "cjs",
  // The emulator is only for local runs and stays a dependency.
  external: ["fauxqs"],
  define: { "import.meta.url": "__bundle_url" },
  banner: { js: "const __bundle_url = require('node:url').pathToFileURL(__filename).href;" },
};

/** The launcher of `dist/NAME.cjs`, as `dist/NAME.mjs`, keyed to that build by its hash. */
async function launcher(name) {
  const hash = createHash("sha256")
    .update(await readFile(`dist/${name}.cjs`))
    .digest("hex")
    .slice(0, 16);
  await build({
    ...common,
    sourcemap: false,
    format: "esm",
    entryPoints: ["cli/launcher.ts"],
    outfile: `dist/${name}.mjs`,
    define: { __BUNDLE_FILE__: JSON.stringify(`${name}.cjs`), __BUNDLE_HASH__: JSON.stringify(hash) },
    banner: { js: "#!/usr/bin/env node" },
  });
}

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
  build({ ...program, entryPoints: ["cli/main.ts"], outfile: "dist/s3-bucket-loader.cjs" }).then(() =>
    launcher("s3-bucket-loader"),
  ),
  build({ ...program, entryPoints: ["cli/worker-main.ts"], outfile: "dist/worker.cjs" }).then(() =>
    launcher("worker"),
  ),
  // The embedded emulator as one file, its dependencies included: loading fauxqs's hundreds of modules one by
  // one (through a loader hook on Node < 22.5) took about three times as long as the whole program's start.
  build({
    ...common,
    format: "esm",
    sourcemap: false,
    // createRequire lets the bundled CommonJS packages load.
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    plugins: [noSqlite],
    entryPoints: ["local/emulator-server.mjs"],
    outfile: "dist/emulator.mjs",
  }),
]);
