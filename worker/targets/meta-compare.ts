/**
 * The one rule for "the target holds the source's entry": the same size, mode, owner and mtime (to the
 * precision the target promises, see times.ts). Every target uses it twice: in WRITE, where an entry that
 * passes is `unchanged` and not written again, and in VALIDATE, where each difference is a reason. Pure: two
 * sets of metadata and the target's rules in, the differences out.
 */

/** The source's metadata, as lstat gives it. */
export interface SourceMeta {
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly size: bigint | number;
  readonly mtimeNs: bigint;
}

/** What the target keeps of an entry; its mtime in the target's own form (nanoseconds, yas3fs's attr). */
export interface TargetMeta<Time> {
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly size: bigint | number;
  readonly mtime: Time;
}

export interface MetaRules<Time> {
  /** Where the target's values are, as a reason says it: "in the target", "in attr". */
  readonly at: string;
  /** Where the target's size is, when said otherwise ("in the bucket"); `at` when not given. */
  readonly sizeAt?: string;
  /**
   * `permissions`: the permission bits (07777), shown as `mode 0644`, not compared for a symlink (whose own
   * bits nothing keeps); `st_mode`: the whole st_mode with the type bits, shown as `st_mode 100644`.
   */
  readonly mode: "permissions" | "st_mode";
  /** Compare the owner (uid and gid). */
  readonly owner: boolean;
  /** Why the target's mtime is not the one it promises for the source's, or null (a rule of times.ts). */
  readonly mtime: (target: Time, sourceNs: bigint) => string | null;
}

/** Why the target's size is not the one wanted (the source's, or the TOC's when the source is gone), or null. */
export function sizeProblem(
  target: bigint | number,
  want: bigint | number,
  at: string,
  from: "source" | "TOC" = "source",
): string | null {
  return BigInt(target) === BigInt(want) ? null : `size ${target} ${at}, ${want} in the ${from}`;
}

/** The differences in mode, owner and mtime, in that order (sizes are compared by `metaProblems`). */
export function attrProblems<Time>(
  target: TargetMeta<Time>,
  source: SourceMeta,
  symlink: boolean,
  rules: MetaRules<Time>,
): string[] {
  const problems: string[] = [];
  if (rules.mode === "st_mode") {
    if (target.mode !== source.mode)
      problems.push(
        `st_mode ${target.mode.toString(8)} ${rules.at}, ${source.mode.toString(8)} in the source`,
      );
  } else if (!symlink && (target.mode & 0o7777n) !== (source.mode & 0o7777n)) {
    problems.push(`mode ${octal(target.mode)} ${rules.at}, ${octal(source.mode)} in the source`);
  }
  if (rules.owner && (target.uid !== source.uid || target.gid !== source.gid))
    problems.push(`owner ${target.uid}:${target.gid} ${rules.at}, ${source.uid}:${source.gid} in the source`);
  const t = rules.mtime(target.mtime, source.mtimeNs);
  if (t) problems.push(t);
  return problems;
}

/** Every difference, size first: none means the target holds the source's entry. */
export function metaProblems<Time>(
  target: TargetMeta<Time>,
  source: SourceMeta,
  symlink: boolean,
  rules: MetaRules<Time>,
): string[] {
  const size = sizeProblem(target.size, source.size, rules.sizeAt ?? rules.at);
  return [...(size ? [size] : []), ...attrProblems(target, source, symlink, rules)];
}

/** The same size, mode, owner and mtime: an entry written before and not to be written again. */
export function sameMeta<Time>(
  target: TargetMeta<Time>,
  source: SourceMeta,
  symlink: boolean,
  rules: MetaRules<Time>,
): boolean {
  return metaProblems(target, source, symlink, rules).length === 0;
}

/** A mode's permission bits as `0644`. */
export function octal(mode: bigint): string {
  return `0${(mode & 0o7777n).toString(8)}`;
}
