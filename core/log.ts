/**
 * A small structured logger: text lines for people, JSON lines (`--log-format json`) for machines and tests.
 * Everything goes to stderr, so that stdout stays free for results.
 */
export type Level = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: Level, message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  format: "text" | "json",
  base: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const log = (level: Level, message: string, fields: Record<string, unknown> = {}) => {
    const time = new Date().toISOString();
    if (format === "json") {
      write(JSON.stringify({ time, level, ...base, msg: message, ...fields }));
    } else {
      const who = typeof base.component === "string" ? `[${base.component}] ` : "";
      const extra = Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : "";
      write(
        `${time.slice(11, 19)} ${level === "info" ? "" : `${level.toUpperCase()} `}${who}${message}${extra}`,
      );
    }
  };
  return {
    log,
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    child: (fields) => createLogger(format, { ...base, ...fields }, write),
  };
}
