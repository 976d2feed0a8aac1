/** Builds the load stack for the infrastructure tests (the worker bundle is built first when missing). */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { CONTEXT_DEFAULTS, type LoaderContext } from "../../lib/context.ts";
import { LoaderStack } from "../../lib/loader-stack.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export function ensureBundle(): void {
  if (existsSync(`${ROOT}dist/worker.cjs`)) return;
  const r = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run build failed");
}

export function loaderStack(
  settings: Partial<LoaderContext> = {},
  opts: { app?: App; id?: string; env?: { account: string; region: string }; workerBundlePath?: string } = {},
): LoaderStack {
  ensureBundle();
  return new LoaderStack(opts.app ?? new App(), opts.id ?? "S3BucketLoader", {
    settings: { ...CONTEXT_DEFAULTS, ...settings },
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.workerBundlePath ? { workerBundlePath: opts.workerBundlePath } : {}),
  });
}

/**
 * The user data of the workers' launch template (or the master host's), with tokens shown as `${Ref}` /
 * `${Logical.Attr}`.
 */
export function userDataOf(
  template: Record<string, unknown>,
  host: "Workers" | "MasterHost" = "Workers",
): string {
  const resources = (
    template as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }
  ).Resources;
  const lt = Object.entries(resources).find(
    ([id, r]) => r.Type === "AWS::EC2::LaunchTemplate" && id.startsWith(`${host}LaunchTemplate`),
  )?.[1];
  if (!lt) throw new Error(`no launch template of ${host} in the template`);
  const data = (lt.Properties.LaunchTemplateData as { UserData: { "Fn::Base64": unknown } }).UserData;
  return flatten(data["Fn::Base64"]);
}

/** A CloudFormation value as a string, with `Ref`s and `Fn::GetAtt`s shown as `${Ref}` / `${Logical.Attr}`. */
export function flatten(v: unknown): string {
  if (typeof v === "string") return v;
  const o = v as Record<string, unknown>;
  if (typeof o.Ref === "string") return `\${${o.Ref}}`;
  if (Array.isArray(o["Fn::GetAtt"])) return `\${${(o["Fn::GetAtt"] as string[]).join(".")}}`;
  if (typeof o["Fn::Sub"] === "string") return o["Fn::Sub"] as string;
  const join = o["Fn::Join"] as [string, unknown[]] | undefined;
  if (join) return join[1].map(flatten).join(join[0]);
  if (Array.isArray(o["Fn::Select"])) return `\${Select}`;
  throw new Error(`cannot flatten ${JSON.stringify(v)}`);
}
