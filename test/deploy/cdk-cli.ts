/**
 * The CDK CLI of this package (`cdk bootstrap`, `cdk deploy`, `cdk destroy`) against moto, as a user runs it
 * with `AWS_ENDPOINT_URL` set. It runs in a scratch folder with a copy of the project's cdk.json whose app is
 * the same `bin/app.ts`, for two reasons: the lookups' cache (cdk.context.json) and the cloud assembly must not
 * land in the working tree, and the app's build step (cdk.json runs `npm run build` first) must not rewrite
 * dist/ while other test files run its bundles (npm test has just built them).
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Moto } from "../helpers/moto.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const STACK = "S3BucketLoader";
const CDK = path.join(ROOT, "node_modules/aws-cdk/bin/cdk");
const TSX = path.join(ROOT, "node_modules/tsx/dist/cli.mjs");

export interface CdkRun {
  readonly code: number | null;
  readonly out: string;
}

export class CdkCli {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async create(moto: Moto, dir: string): Promise<CdkCli> {
    await fs.mkdir(dir, { recursive: true });
    const project = JSON.parse(await fs.readFile(path.join(ROOT, "cdk.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert(
      typeof project.app === "string" && project.app.endsWith("bin/app.ts"),
      `cdk.json's app is ${JSON.stringify(project.app)}; the suite runs bin/app.ts itself`,
    );
    const app = [process.execPath, TSX, path.join(ROOT, "bin/app.ts")]
      .map((w) => JSON.stringify(w))
      .join(" ");
    await fs.writeFile(
      path.join(dir, "cdk.json"),
      JSON.stringify({ ...project, app, output: path.join(dir, "cdk.out") }, null, 2),
    );
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...moto.env(),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      CDK_DISABLE_CLI_TELEMETRY: "true",
    };
    return new CdkCli(dir, env);
  }

  /** One CLI command; bounded in time (killed after `timeoutMs`). */
  run(args: readonly string[], o: { cwd?: string; timeoutMs?: number } = {}): Promise<CdkRun> {
    const timeoutMs = o.timeoutMs ?? 180_000;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CDK, ...args, "--no-notices"], {
        cwd: o.cwd ?? this.dir,
        env: this.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      const keep = (d: string) => {
        out = (out + d).slice(-20_000);
      };
      child.stdout.setEncoding("utf8").on("data", keep);
      child.stderr.setEncoding("utf8").on("data", keep);
      const timer = setTimeout(() => {
        keep(`\n(killed after ${timeoutMs} ms)`);
        child.kill("SIGKILL");
      }, timeoutMs);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  }

  async mustRun(args: readonly string[], o: { cwd?: string } = {}): Promise<string> {
    const r = await this.run(args, o);
    if (r.code !== 0) throw new Error(`cdk ${args.join(" ")} exited with ${r.code}:\n${r.out.slice(-6000)}`);
    return r.out;
  }

  /** Bootstraps the environment. Run outside the project, as it needs no app (else it synthesizes it). */
  async bootstrap(account: string, region: string): Promise<string> {
    const cwd = path.join(this.dir, "bootstrap");
    await fs.mkdir(cwd, { recursive: true });
    return this.mustRun(["bootstrap", `aws://${account}/${region}`], { cwd });
  }

  /**
   * `cdk deploy` of the stack with these context values; returns the outputs it wrote. moto gives a stack's
   * outputs only to a direct deployment (a change set's deployment has none there), hence `--method=direct`.
   */
  async deploy(context: Readonly<Record<string, string>> = {}): Promise<Record<string, string>> {
    const file = path.join(this.dir, "outputs.json");
    await fs.rm(file, { force: true });
    await this.mustRun([
      "deploy",
      STACK,
      "--method=direct",
      "--require-approval",
      "never",
      "--outputs-file",
      file,
      ...contextArgs(context),
    ]);
    const all = JSON.parse(await fs.readFile(file, "utf8")) as Record<string, Record<string, string>>;
    const outputs = all[STACK];
    if (!outputs) throw new Error(`cdk deploy wrote no outputs for ${STACK}: ${JSON.stringify(all)}`);
    return outputs;
  }

  /**
   * `cdk destroy` of the stack, from the cloud assembly the last deploy synthesized (destroy takes only the
   * stack's name and environment from it; synthesizing the same app again would tell it nothing more).
   */
  destroy(): Promise<string> {
    return this.mustRun(["destroy", STACK, "--force", "--app", path.join(this.dir, "cdk.out")]);
  }

  /** The template the last synth wrote. */
  async template(): Promise<{ Resources: Record<string, TemplateResource> }> {
    return JSON.parse(await fs.readFile(path.join(this.dir, "cdk.out", `${STACK}.template.json`), "utf8"));
  }
}

export interface TemplateResource {
  readonly Type: string;
  readonly DeletionPolicy?: string;
  readonly Properties?: Record<string, unknown>;
}

function contextArgs(context: Readonly<Record<string, string>>): string[] {
  return Object.entries(context).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
}

function assert(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}
