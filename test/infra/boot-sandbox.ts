// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is bash, not a JS template.
/**
 * Runs a rendered boot script for real (bash, set -euo pipefail and all) in a temporary directory, with the
 * commands that would touch the machine replaced by small scripts on PATH: `curl` answers as instance
 * metadata would (the tags given, a 404 for a tag not given), and `mount`, `mountpoint`, `systemctl`,
 * `sleep` and `aws` only record that they were called. The script's fixed paths are moved into the directory.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";

export interface SandboxRun {
  readonly status: number | null;
  readonly stderr: string;
  /** The commands the stubs saw, one line each: `systemctl --no-block poweroff`. */
  readonly calls: string[];
  /** A file the script wrote, by its original path; undefined when it is not there. */
  file(original: string): string | undefined;
}

export interface SandboxOptions {
  /** Instance tags by key, as instance metadata serves them. */
  readonly tags: Readonly<Record<string, string>>;
  readonly instanceId?: string;
  /** Fixed paths of the script to move into the sandbox (files or directories). */
  readonly paths: readonly string[];
  /** Extra stub commands by name (on PATH) or by original absolute path (moved): their bash body. */
  readonly stubs?: Readonly<Record<string, string>>;
}

export function runInSandbox(script: string, o: SandboxOptions): SandboxRun {
  const dir = mkdtempSync(path.join(os.tmpdir(), "s3bl-boot-"));
  try {
    const bin = path.join(dir, "bin");
    const meta = path.join(dir, "meta");
    const calls = path.join(dir, "calls");
    mkdirSync(bin);
    mkdirSync(meta);
    writeFileSync(calls, "");
    for (const [key, value] of Object.entries(o.tags)) writeFileSync(path.join(meta, key), value);
    const record = `printf '%s\\n' "$STUB $*" >>${JSON.stringify(calls)}`;
    const stubs: Record<string, string> = {
      curl: [
        'url="${*: -1}"',
        'case "$url" in',
        "  */api/token) printf token ;;",
        `  */meta-data/instance-id) printf %s ${JSON.stringify(o.instanceId ?? "i-0123456789abcdef0")} ;;`,
        `  */meta-data/tags/instance/*) f=${JSON.stringify(meta)}/"\${url##*/}"; [ -f "$f" ] || exit 22; cat "$f" ;;`,
        "  *) exit 22 ;;",
        "esac",
      ].join("\n"),
      mount: record,
      mountpoint: `${record}\nexit 1`,
      systemctl: record,
      sleep: `${record}\nexit 1`,
      aws: record,
      ...o.stubs,
    };
    for (const [name, body] of Object.entries(stubs)) {
      const file = name.startsWith("/") ? path.join(dir, "root", name) : path.join(bin, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(
        file,
        `#!/bin/bash\nSTUB=${JSON.stringify(name)}\n${body.replaceAll("$RECORD", record)}\n`,
      );
      chmodSync(file, 0o755);
    }
    const moved = new Map(o.paths.map((p) => [p, path.join(dir, "root", p)]));
    let text = script;
    for (const [from, to] of moved) {
      text = text.replaceAll(from, to);
      mkdirSync(path.dirname(to), { recursive: true });
    }
    const file = path.join(dir, "script.sh");
    writeFileSync(file, text);
    const r = spawnSync("bash", [file], {
      encoding: "utf8",
      env: { PATH: `${bin}:/usr/bin:/bin`, LANG: "C.UTF-8", HOME: dir },
      cwd: dir,
      timeout: 20_000,
    });
    const lines = readFileSync(calls, "utf8").split("\n").filter(Boolean);
    const contents = new Map<string, string | undefined>();
    for (const [from, to] of moved) {
      contents.set(from, existsSync(to) && statSync(to).isFile() ? readFileSync(to, "utf8") : undefined);
    }
    return {
      status: r.status,
      stderr: r.stderr,
      calls: lines,
      file: (original) => {
        if (!moved.has(original)) throw new Error(`${original} was not moved into the sandbox`);
        return contents.get(original);
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
