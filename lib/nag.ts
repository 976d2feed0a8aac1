/**
 * Acknowledgements of cdk-nag AwsSolutions findings that do not apply to this stack, each with its reason,
 * recorded next to the construct that causes them. The infrastructure tests run the AwsSolutions pack and
 * fail on any finding that is not acknowledged here.
 */
import { Stack, Validations } from "aws-cdk-lib";
import { Construct, type IConstruct } from "constructs";

/** Acknowledges a whole rule on a construct, or only the listed findings of it (`Resource::…`, `Action::…`). */
export function acknowledge(
  scope: unknown,
  rule: string,
  reason: string,
  findings: readonly string[] = [],
): void {
  // A grantee that is not a construct (an imported principal) has no finding of ours to acknowledge.
  if (!Construct.isConstruct(scope)) return;
  const ids =
    findings.length === 0 ? [`AwsSolutions-${rule}`] : findings.map((f) => `AwsSolutions-${rule}[${f}]`);
  for (const id of ids) Validations.of(scope).acknowledge({ id, reason });
}

/** A wildcard resource as cdk-nag names it in a finding: `arn:<AWS::Partition>:…`, `<Bucket1234.Arn>/*`. */
export function nagResource(scope: IConstruct, arn: string): string {
  return `Resource::${render(Stack.of(scope).resolve(arn))}`;
}

function render(v: unknown): string {
  if (typeof v === "string") return v;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === "string") return `<${o.Ref}>`;
    const sub = o["Fn::Sub"];
    if (typeof sub === "string") return sub.replace(/\$\{([^}]+)\}/g, "<$1>");
    const getAtt = o["Fn::GetAtt"];
    if (Array.isArray(getAtt)) return `<${getAtt.join(".")}>`;
    const join = o["Fn::Join"];
    if (Array.isArray(join) && Array.isArray(join[1])) return join[1].map(render).join(String(join[0]));
  }
  throw new Error(`cannot render ${JSON.stringify(v)} as a cdk-nag resource`);
}
