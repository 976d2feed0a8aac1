/** `--quiet`: a logger that keeps warnings and errors, and of the rest only the run's outcome (the summary's first line). */
import type { Logger } from "./log.ts";

export function quietLogger(l: Logger, format: "text" | "json"): Logger {
  const log: Logger["log"] = (level, message, fields) => {
    if (level !== "info" && level !== "debug") l.log(level, message, fields);
    else if (fields?.event === "summary")
      l.log(level, format === "json" ? message : (message.split("\n")[0] ?? ""), fields);
  };
  return {
    log,
    info: (m, f) => log("info", m, f),
    warn: (m, f) => l.warn(m, f),
    error: (m, f) => l.error(m, f),
    child: (f) => quietLogger(l.child(f), format),
  };
}
