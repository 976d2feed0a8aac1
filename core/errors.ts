/** The few error types of the project. Expected per-entry outcomes are values, not exceptions. */

/** A setting is missing or wrong: names the setting, shows the value, says what is allowed. Exit code 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** A call to AWS (or the emulator) failed after retries; says which operation on which resource. */
export class AwsCallError extends Error {
  override readonly name = "AwsCallError";
  constructor(
    readonly operation: string,
    readonly resource: string,
    options: { cause: unknown },
  ) {
    super(`${operation} on ${resource} failed: ${describe(options.cause)}`, options);
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** The code of a failed system call (`ENOENT`, `EACCES`, …) or of a Node error, or undefined for any other. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The errno code to show in a reason, or the error itself when it has none. */
export function errnoText(err: unknown): string {
  return errnoOf(err) ?? String(err);
}

export function isAbort(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === "AbortError" || (err as { code?: string }).code === "ABORT_ERR")
  );
}
