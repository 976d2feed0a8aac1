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

export function isAbort(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === "AbortError" || (err as { code?: string }).code === "ABORT_ERR")
  );
}
