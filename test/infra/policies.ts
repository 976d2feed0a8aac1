// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is how CloudFormation tokens are shown.
/**
 * The IAM statements of a synthesized template, in a form a test can compare whole: intrinsics rendered as
 * `${Logical.Attr}` strings, logical ids without their hash suffix, asset hashes and the image parameter
 * named, actions and resources sorted. A test that compares these with `deepEqual` fails on any statement,
 * action, resource or condition added, removed or widened.
 */
import { flatten } from "./fixture.ts";

export interface Statement {
  readonly effect: string;
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly conditions?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
  readonly principal?: unknown;
}

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

/** Every statement of the policy documents of the resources whose logical id starts with `idPrefix`. */
export function statementsOf(template: Record<string, unknown>, type: string, idPrefix: string): Statement[] {
  const resources = (template as { Resources: Resources }).Resources;
  const found = Object.entries(resources).filter(
    ([id, r]) => r.Type === type && normaliseId(id).startsWith(idPrefix),
  );
  if (found.length === 0) throw new Error(`no ${type} whose id starts with ${idPrefix}`);
  return found.flatMap(([, r]) => {
    const doc = (r.Properties.PolicyDocument ?? r.Properties.KeyPolicy) as { Statement: unknown[] };
    return doc.Statement.map((s) => normaliseStatement(s as Record<string, unknown>));
  });
}

/** The managed policies a role has attached, rendered like resources. */
export function managedPoliciesOf(template: Record<string, unknown>, roleIdPrefix: string): string[] {
  const resources = (template as { Resources: Resources }).Resources;
  const role = Object.entries(resources).find(
    ([id, r]) => r.Type === "AWS::IAM::Role" && normaliseId(id).startsWith(roleIdPrefix),
  );
  if (!role) throw new Error(`no role whose id starts with ${roleIdPrefix}`);
  return ((role[1].Properties.ManagedPolicyArns as unknown[]) ?? []).map(render).sort();
}

function normaliseStatement(s: Record<string, unknown>): Statement {
  const list = (v: unknown) => [v ?? []].flat().map(render).sort();
  const out: {
    effect: string;
    actions: string[];
    resources: string[];
    conditions?: Record<string, Record<string, string | string[]>>;
    principal?: unknown;
  } = { effect: String(s.Effect), actions: list(s.Action), resources: list(s.Resource) };
  if (s.Condition) {
    const conditions: Record<string, Record<string, string | string[]>> = {};
    for (const [op, keys] of Object.entries(s.Condition as Record<string, Record<string, unknown>>)) {
      conditions[op] = Object.fromEntries(
        Object.entries(keys).map(([k, v]) => [k, Array.isArray(v) ? v.map(render).sort() : render(v)]),
      );
    }
    out.conditions = conditions;
  }
  if (s.Principal !== undefined) out.principal = renderPrincipal(s.Principal);
  return out;
}

/** A resource, an ARN or a condition value as a string: `arn:${AWS::Partition}:sqs:…:${MessagingTocQueue.Arn}`. */
export function render(v: unknown): string {
  return flatten(v)
    .replace(/\$\{SsmParameterValue[^}]*\}/g, "${AmazonLinux2023Image}")
    .replace(/\$\{([A-Za-z0-9]+?)[0-9A-F]{8}([.}])/g, "$${$1$2")
    .replace(/[0-9a-f]{64}/g, "ASSET_HASH");
}

function renderPrincipal(p: unknown): unknown {
  if (typeof p === "string") return p;
  return Object.fromEntries(
    Object.entries(p as Record<string, unknown>).map(([k, v]) => [
      k,
      Array.isArray(v) ? v.map(render).sort() : render(v),
    ]),
  );
}

function normaliseId(id: string): string {
  return id.replace(/[0-9A-F]{8}$/, "");
}
