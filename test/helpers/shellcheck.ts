/** Real shellcheck (all checks, bash) on a rendered script: its findings, empty when clean. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export function shellcheck(name: string, text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "s3bl-shellcheck-"));
  try {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    const r = spawnSync("shellcheck", ["--shell=bash", "--severity=style", file], { encoding: "utf8" });
    if (r.error) throw new Error(`shellcheck could not run (npm test installs it): ${r.error.message}`);
    return r.status === 0 ? "" : `${r.stdout}${r.stderr}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
