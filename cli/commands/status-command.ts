/**
 * `s3-bucket-loader status [--run-id ID] [--state-dir DIR]`: a run as its master last wrote it to
 * `<stateDir>/runs/<runId>/status.json` (every progress tick): phase, progress, workers, and whether the
 * master is still alive. Without `--run-id`, the run updated last. `--json` prints the status file.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CommandModule } from "yargs";
import { makeClients } from "../../core/aws/clients.ts";
import { S3ObjectStore } from "../../core/aws/s3-object-store.ts";
import { parseConfig, setting } from "../../core/config.ts";
import { ConfigError, errnoOf } from "../../core/errors.ts";
import { RUNS_DIR, STATUS_FILE } from "../../core/run-paths.ts";
import { isS3Url, parseS3Url } from "../../core/s3-url.ts";
import { renderLive } from "../../master/output.ts";
import { masterSettings } from "../../master/settings.ts";
import type { RunStatus } from "../../report/status-recorder.ts";
import { yargsOptions } from "../cli-options.ts";

const table = {
  stateDir: masterSettings.stateDir,
  from: setting<string | undefined>({
    flag: "from",
    type: "string",
    describe:
      "read the status from S3 instead, where the stack's master host publishes it: s3://LOGS-BUCKET[/PREFIX] (needs --run-id)",
    schema: masterSettings.source.schema.optional(),
  }),
  region: masterSettings.region,
  endpointUrl: masterSettings.endpointUrl,
  logFormat: masterSettings.logFormat,
  runId: {
    ...masterSettings.runId,
    default: undefined,
    defaultText: "the run updated last",
    schema: masterSettings.runId.schema.optional(),
  },
};

export const statusCommand: CommandModule = {
  command: "status",
  describe: "show a running (or the last) run: phase, progress, workers",
  builder: (y) => y.options(yargsOptions(table)),
  handler: async (argv) => {
    const c = parseConfig(table, argv, process.env);
    if (c.from) {
      if (!isS3Url(c.from))
        throw new ConfigError(`--from: got ${JSON.stringify(c.from)}; expected s3://BUCKET[/PREFIX]`);
      if (!c.runId) throw new ConfigError("--run-id: got nothing; reading from S3 needs the run's id");
    }
    const found = c.from
      ? await readStatusFromS3(c.from, c.runId ?? "", { region: c.region, endpoint: c.endpointUrl })
      : await readStatus(c.stateDir, c.runId);
    if (!found)
      throw new ConfigError(
        c.runId
          ? `--run-id: got ${JSON.stringify(c.runId)}; no status of that run in ${c.from ?? c.stateDir}`
          : `--state-dir: got ${JSON.stringify(c.stateDir)}; no run has written a status there yet`,
      );
    process.stdout.write(
      argv.json ? `${JSON.stringify(found.status, null, 2)}\n` : renderStatus(found.status, Date.now()),
    );
    process.exitCode = 0;
  },
};

/** The status the master host published to S3, at `PREFIX/runs/<runId>/status.json`. */
export async function readStatusFromS3(
  from: string,
  runId: string,
  conn: { region: string; endpoint?: string | undefined },
): Promise<{ status: RunStatus; file: string } | null> {
  const loc = parseS3Url(from);
  const key = `${loc.prefix ? `${loc.prefix}/` : ""}${RUNS_DIR}/${runId}/${STATUS_FILE}`;
  const clients = makeClients({ ...conn, maxSockets: 2 });
  try {
    const store = new S3ObjectStore(clients.s3, loc.bucket);
    if (!(await store.head(key))) return null;
    const chunks: Buffer[] = [];
    for await (const c of await store.get(key)) chunks.push(Buffer.from(c as Uint8Array));
    return {
      status: JSON.parse(Buffer.concat(chunks).toString("utf8")) as RunStatus,
      file: `s3://${loc.bucket}/${key}`,
    };
  } finally {
    clients.destroy();
  }
}

/** The status of the run, or of the run updated last. */
export async function readStatus(
  stateDir: string,
  runId?: string,
): Promise<{ status: RunStatus; file: string } | null> {
  const runs = path.join(stateDir, RUNS_DIR);
  // No runs folder yet: no run to show. Any other reason it cannot be read is an error.
  const ids = runId
    ? [runId]
    : await fs.readdir(runs).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return [] as string[];
        throw err;
      });
  let best: { status: RunStatus; file: string } | null = null;
  for (const id of ids) {
    const file = path.join(runs, id, STATUS_FILE);
    // A run directory without a status file (its master never got to write one) is not a run to show.
    const text = await fs.readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    if (text === null) continue;
    let status: RunStatus;
    try {
      status = JSON.parse(text) as RunStatus;
    } catch {
      continue; // being replaced: rename is atomic, so only a foreign file gets here
    }
    if (!best || status.updatedAt > best.status.updatedAt) best = { status, file };
  }
  return best;
}

/** The status as text (pure but for the clock it is given). */
export function renderStatus(s: RunStatus, nowMs: number): string {
  const ageSec = (nowMs - Date.parse(s.updatedAt)) / 1000;
  const alive = s.host !== os.hostname() ? "on another host" : isAlive(s.pid) ? "running" : "not running";
  const lines = [`run ${s.runId}  source ${s.source}  started ${s.startedAt}`];
  if (s.ended) {
    lines.push(
      `ended ${s.ended.endedAt}: ${s.ended.outcome.toUpperCase()}${s.ended.failureReason ? ` (${s.ended.failureReason})` : ""}`,
    );
    if (s.ended.manifest)
      lines.push(`manifest ${s.ended.manifest.destination} (${s.ended.manifest.lines} lines, one per entry)`);
  } else {
    lines.push(`master pid ${s.pid} on ${s.host}: ${alive}; last update ${Math.round(ageSec)} s ago`);
    if (alive === "not running") lines.push("the master stopped before the run ended");
  }
  if (s.progress)
    lines.push(
      ...renderLive(s.progress, {
        elapsedSec: (Date.parse(s.updatedAt) - Date.parse(s.startedAt)) / 1000,
        width: 120,
        expectedWorkers: s.expectedWorkers,
      }),
    );
  return `${lines.join("\n")}\n`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === "EPERM";
  }
}
