// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is bash, not a JS template.
/**
 * The master host's boot script and run script, rendered by pure functions from one typed input (values may be
 * CDK tokens). The master host runs one load and ends: it installs Node 22, downloads the CLI bundle, mounts the
 * source as the workers do, and starts a systemd service that runs `run-master.sh`. That script takes the run id
 * and the master's further arguments from the instance's tags (refusing a run tag that is not a run id, and an
 * argument tag of more than one line), runs `s3-bucket-loader master --stack … --launch`,
 * and copies the run's status file to S3 every 30 s. When the master stops (done, failed or `systemctl stop`),
 * `publish-run.sh` uploads the status, the report, the exit code and the journal under `runs/RUN_ID/` of the
 * logs bucket, and powers the instance off (the launch template makes that a termination).
 */
import { RUNS_DIR, STATUS_FILE } from "../core/run-paths.ts";
import {
  dirname,
  heredoc,
  IMDS_FUNCTION,
  MATCHES_FUNCTION,
  MOUNT_SOURCE,
  q,
  RETRY_FUNCTION,
  script,
} from "./user-data.ts";

export interface MasterBootInput {
  readonly region: string;
  /** `s3://bucket/key` of the CLI bundle (`dist/s3-bucket-loader.cjs`). */
  readonly bundleUrl: string;
  /** The stack whose outputs the master reads (`--stack`). */
  readonly stackName: string;
  readonly source: {
    /** `host:/path`, mounted read-only with NFS 4.1, as on the workers. */
    readonly nfsExport: string;
    readonly mountPoint: string;
  };
  /** Where the run's status and report go: `s3://bucket/prefix/RUN_ID/`. */
  readonly runs: { readonly bucket: string; readonly prefix: string };
  /** The instance tag whose value is the run id; without it the run id is made from the boot time. */
  readonly runTagKey: string;
  /** The instance tag with the master's further arguments, split on spaces. */
  readonly argsTagKey: string;
}

/** Fixed places on the master host. */
export const MASTER_PATHS = {
  home: "/opt/s3-bucket-loader",
  bundle: "/opt/s3-bucket-loader/s3-bucket-loader.cjs",
  node: "/opt/s3-bucket-loader/node",
  runScript: "/opt/s3-bucket-loader/run-master.sh",
  publishScript: "/opt/s3-bucket-loader/publish-run.sh",
  stateDir: "/var/lib/s3-bucket-loader",
  runEnvFile: "/run/s3-bucket-loader/master.env",
  unit: "s3-bucket-loader-master.service",
} as const;

/** The seconds between two uploads of the status file. */
export const STATUS_UPLOAD_SEC = 30;

/** `run-master.sh`: mounts the source and runs the master of one load. */
export function renderRunMasterScript(input: MasterBootInput): string {
  const p = MASTER_PATHS;
  return script("Runs the master of one load on this instance (systemd ExecStart).", [
    `readonly SOURCE_EXPORT=${q(input.source.nfsExport)}`,
    `readonly SOURCE_MOUNT=${q(input.source.mountPoint)}`,
    `readonly STATE_DIR=${q(p.stateDir)}`,
    `readonly RUNS_URL=${q(`s3://${input.runs.bucket}/${input.runs.prefix}`)}`,
    `readonly RUN_ENV=${q(p.runEnvFile)}`,
    `export AWS_REGION=${q(input.region)}`,
    MATCHES_FUNCTION,
    "",
    "# Instance metadata (IMDSv2): the run id and the master's further arguments come from the instance's tags.",
    IMDS_FUNCTION,
    `run_id=$(imds ${q(`meta-data/tags/instance/${input.runTagKey}`)} || true)`,
    'if [ -z "$run_id" ]; then run_id="run-$(date -u +%Y%m%dT%H%M%SZ)"; fi',
    `extra=$(imds ${q(`meta-data/tags/instance/${input.argsTagKey}`)} || true)`,
    "# The run id names files here and keys in S3, and goes to publish-run.sh through $RUN_ENV: only the shape",
    "# the master accepts. The arguments are split into words and passed as such (never evaluated); a second",
    "# line would be dropped by read, so it is refused rather than ignored.",
    "refuse() {",
    '  echo "s3-bucket-loader: refusing to run the master: $1" >&2',
    "  exit 2",
    "}",
    'if ! matches "$run_id" "$RUN_ID_SHAPE"; then',
    `  refuse "the instance's ${input.runTagKey} tag $(printf %q "\${run_id:0:100}") is not a run id (1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)"`,
    "fi",
    "if [[ $extra == *$'\\n'* ]]; then",
    `  refuse "the instance's ${input.argsTagKey} tag $(printf %q "\${extra:0:200}") has more than one line: give the arguments on one line"`,
    "fi",
    'read -r -a args <<<"$extra"',
    'mkdir -p "$(dirname "$RUN_ENV")" "$STATE_DIR"',
    'echo "RUN_ID=${run_id}" >"$RUN_ENV"',
    "",
    "# The source is only read, and mounted as on the workers.",
    'mkdir -p "$SOURCE_MOUNT"',
    'if ! mountpoint -q "$SOURCE_MOUNT"; then',
    `  ${MOUNT_SOURCE}`,
    "fi",
    "",
    "# The status file, copied to S3 while the master runs: `s3-bucket-loader status` reads it anywhere.",
    `status_file="\${STATE_DIR}/${RUNS_DIR}/\${run_id}/${STATUS_FILE}"`,
    "(",
    `  while sleep ${STATUS_UPLOAD_SEC}; do`,
    '    if [ -f "$status_file" ]; then',
    `      aws s3 cp --only-show-errors "$status_file" "\${RUNS_URL}/\${run_id}/${STATUS_FILE}" || true`,
    "    fi",
    "  done",
    ") &",
    "",
    `exec ${q(p.node)} ${q(p.bundle)} master --stack ${q(input.stackName)} --source "$SOURCE_MOUNT" --launch \\`,
    '  --run-id "$run_id" --state-dir "$STATE_DIR" --report "${STATE_DIR}/report-${run_id}.json" \\',
    '  --log-format json ${args[@]+"${args[@]}"}',
  ]);
}

/** `publish-run.sh`: uploads what the run left, then ends the instance. */
export function renderPublishScript(input: MasterBootInput): string {
  const p = MASTER_PATHS;
  return script(
    "After the master stops (systemd ExecStopPost): uploads the run's status, report, exit code and journal under the run id, then powers the instance off (the launch template makes that a termination).",
    [
      `readonly STATE_DIR=${q(p.stateDir)}`,
      `readonly RUNS_URL=${q(`s3://${input.runs.bucket}/${input.runs.prefix}`)}`,
      `readonly RUN_ENV=${q(p.runEnvFile)}`,
      `export AWS_REGION=${q(input.region)}`,
      'run_id=$(sed -n "s/^RUN_ID=//p" "$RUN_ENV" 2>/dev/null || true)',
      'dest="${RUNS_URL}/${run_id:-no-run}"',
      "tmp=$(mktemp -d)",
      'if [ -n "$run_id" ]; then',
      `  cp "\${STATE_DIR}/${RUNS_DIR}/\${run_id}/${STATUS_FILE}" "\${tmp}/${STATUS_FILE}" 2>/dev/null || true`,
      '  cp "${STATE_DIR}/report-${run_id}.json" "${tmp}/report.json" 2>/dev/null || true',
      "fi",
      "# EXIT_STATUS comes from systemd: the master's exit code (0 done, 1 failed, 2 mismatches, …).",
      'echo "${EXIT_STATUS:-unknown}" >"${tmp}/exit-code"',
      `journalctl -u ${q(p.unit)} -b --no-pager -o cat | gzip >"\${tmp}/master.log.gz" || true`,
      'aws s3 cp --only-show-errors --recursive "$tmp" "$dest/" || echo "could not upload the run to ${dest}" >&2',
      'rm -rf "$tmp"',
      "systemctl --no-block poweroff",
    ],
  );
}

/** The systemd unit that runs the master once; it is not restarted: a second master would start a new run. */
export function renderMasterUnit(): string {
  const p = MASTER_PATHS;
  return [
    "[Unit]",
    "Description=s3-bucket-loader master",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${p.runScript}`,
    `ExecStopPost=${p.publishScript}`,
    "Restart=no",
    // 2 (mismatches) and 130 (stopped) are outcomes the report explains, not unit failures.
    "SuccessExitStatus=1 2 130",
    // On `systemctl stop` every process gets SIGTERM: the master drains and terminates its workers.
    "TimeoutStopSec=600",
    "StandardOutput=journal",
    "StandardError=journal",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The master host's user data: a bash script run once, as root, at first boot. */
export function renderMasterUserData(input: MasterBootInput): string {
  const p = MASTER_PATHS;
  return [
    "#!/bin/bash",
    "# s3-bucket-loader master host: first-boot script (rendered by lib/master-user-data.ts). Holds no secrets:",
    "# the instance role gives every permission.",
    "set -euo pipefail",
    "",
    RETRY_FUNCTION,
    "",
    "# Node 22 for the master, NFS for the source.",
    "retry dnf install -y nodejs22 nfs-utils",
    `mkdir -p ${q(p.home)} ${q(p.stateDir)} ${q(dirname(p.runEnvFile))}`,
    `ln -sf "$(command -v node-22 || command -v node)" ${q(p.node)}`,
    "",
    "# The CLI bundle, from its S3 asset.",
    `retry aws s3 cp --only-show-errors --region ${q(input.region)} ${q(input.bundleUrl)} ${q(p.bundle)}`,
    "",
    heredoc(p.runScript, renderRunMasterScript(input)),
    heredoc(p.publishScript, renderPublishScript(input)),
    heredoc(`/etc/systemd/system/${p.unit}`, renderMasterUnit()),
    `chmod 0755 ${q(p.runScript)} ${q(p.publishScript)}`,
    "",
    "systemctl daemon-reload",
    `systemctl enable --now ${q(p.unit)}`,
    "",
  ].join("\n");
}
