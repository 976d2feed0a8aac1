// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is bash, not a JS template.
/**
 * The workers' boot script and hook scripts, rendered by pure functions from one typed input. Nothing here
 * knows CDK: values may be CDK tokens (they end up inside a `Fn::Join`), which are plain strings to us.
 *
 * What a worker instance does, in order: install Node 22, FUSE 2, Python 3 and yas3fs (from its git repository);
 * download the worker bundle; write the worker's settings as an environment file (the names come from
 * `core/env-names.ts`, the seam with the worker); install the hooks and a systemd service, and start it. The
 * service's ExecStartPre hook names the worker after its instance and its run after the instance's run tag
 * (refusing, and ending the instance, when the tag is not a run id), then mounts the source (NFS, read-only) and
 * the target (yas3fs, with TZ=UTC); ExecStopPost uploads the logs, and when the worker finished its run,
 * unmounts and powers the instance off.
 */
import { RUN_ID_SHAPE } from "../core/deployment.ts";
import { ENV, type EnvName } from "../core/env-names.ts";

export interface WorkerBootInput {
  readonly region: string;
  /** `s3://bucket/key` of the worker bundle (`dist/worker.cjs`). */
  readonly bundleUrl: string;
  readonly source: {
    /** `host:/path`, mounted read-only with NFS 4.1. */
    readonly nfsExport: string;
    readonly mountPoint: string;
  };
  readonly target: {
    readonly bucket: string;
    /** Key prefix inside the bucket, without leading or trailing `/`; '' for the bucket root. */
    readonly prefix: string;
    readonly mountPoint: string;
    readonly cacheMiB: number;
    /** yas3fs's SNS topic for cache invalidation; each worker then gets its own queue (`--new-queue`). */
    readonly yas3fsTopicArn?: string | undefined;
    readonly yas3fsRef: string;
  };
  /** Where logs go at shutdown: `s3://bucket/prefix/RUN_ID/INSTANCE_ID/`. */
  readonly logs: { readonly bucket: string; readonly prefix: string };
  /** The instance tag whose value is the run id (the master tags each instance it launches). */
  readonly runTagKey: string;
  /** The worker's settings, by environment variable name. */
  readonly env: Readonly<Partial<Record<EnvName, string>>>;
}

/** Fixed places on a worker instance. */
export const WORKER_PATHS = {
  home: "/opt/s3-bucket-loader",
  bundle: "/opt/s3-bucket-loader/worker.cjs",
  node: "/opt/s3-bucket-loader/node",
  hooks: "/opt/s3-bucket-loader/hooks",
  envFile: "/etc/s3-bucket-loader/worker.env",
  instanceEnvFile: "/run/s3-bucket-loader/instance.env",
  cacheDir: "/var/cache/yas3fs",
  yas3fsLog: "/var/log/yas3fs/yas3fs.log",
  yas3fsSource: "/opt/yas3fs",
  unit: "s3-bucket-loader-worker.service",
} as const;

export const YAS3FS_REPOSITORY = "https://github.com/danilop/yas3fs.git";

/** The hook scripts, by file name under `WORKER_PATHS.hooks`. */
export function renderHooks(input: WorkerBootInput): Record<HookName, string> {
  return {
    "mount-target.sh": mountTarget(input),
    "unmount-target.sh": unmountTarget(input),
    "before-initialized.sh": beforeInitialized(input),
    "before-validate.sh": beforeValidate(),
    "at-shutdown.sh": atShutdown(input),
  };
}

export type HookName =
  | "mount-target.sh"
  | "unmount-target.sh"
  | "before-initialized.sh"
  | "before-validate.sh"
  | "at-shutdown.sh";

/** The environment file the service reads: `NAME=value` lines, names from the seam. */
export function renderEnvFile(env: WorkerBootInput["env"]): string {
  const lines = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([name, value]) => {
      if (!/^[^\s"'\\`]*$/.test(value)) {
        throw new Error(
          `${name}: got ${JSON.stringify(value)}; expected a value without spaces, quotes or backslashes`,
        );
      }
      return `${name}=${value}`;
    });
  return `${lines.join("\n")}\n`;
}

/** The systemd unit that runs the worker bundle. */
export function renderUnit(): string {
  const p = WORKER_PATHS;
  return [
    "[Unit]",
    "Description=s3-bucket-loader worker",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `EnvironmentFile=${p.envFile}`,
    // Written by ExecStartPre; systemd reads environment files just before each command, so ExecStart sees it.
    `EnvironmentFile=-${p.instanceEnvFile}`,
    `ExecStartPre=${p.hooks}/before-initialized.sh`,
    `ExecStart=${p.node} ${p.bundle}`,
    `ExecStopPost=${p.hooks}/at-shutdown.sh`,
    "Restart=on-failure",
    "RestartSec=10",
    // 130: the worker stopped on SIGTERM after draining, which is how `systemctl stop` ends it.
    "SuccessExitStatus=130",
    // The worker drains for up to 30 s; then yas3fs may need minutes to finish its uploads.
    "TimeoutStopSec=900",
    "StandardOutput=journal",
    "StandardError=journal",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The user data: a bash script run once, as root, at first boot. */
export function renderWorkerUserData(input: WorkerBootInput): string {
  const p = WORKER_PATHS;
  const hooks = renderHooks(input);
  const files = [
    heredoc(p.envFile, renderEnvFile(input.env)),
    heredoc(`/etc/systemd/system/${p.unit}`, renderUnit()),
    ...Object.entries(hooks).map(([name, text]) => heredoc(`${p.hooks}/${name}`, text)),
  ];
  return [
    "#!/bin/bash",
    "# s3-bucket-loader worker: first-boot script (rendered by lib/user-data.ts). Holds no secrets: the",
    "# instance role gives every permission.",
    "set -euo pipefail",
    "",
    RETRY_FUNCTION,
    "",
    "# Node 22 for the worker, FUSE 2 and Python 3 for yas3fs, NFS for the source, rsync for --copier rsync.",
    "retry dnf install -y nodejs22 fuse fuse-libs python3 python3-pip git nfs-utils rsync",
    `mkdir -p ${q(p.home)} ${q(p.hooks)} ${q(dirname(p.envFile))} ${q(p.cacheDir)} ${q(dirname(p.yas3fsLog))}`,
    `ln -sf "$(command -v node-22 || command -v node)" ${q(p.node)}`,
    "",
    "# yas3fs from its repository (the PyPI release is Python 2 only).",
    `rm -rf ${q(p.yas3fsSource)}`,
    `retry git clone --quiet ${q(YAS3FS_REPOSITORY)} ${q(p.yas3fsSource)}`,
    `git -C ${q(p.yas3fsSource)} checkout --quiet ${q(input.target.yas3fsRef)}`,
    `retry pip3 install --quiet ${q(p.yas3fsSource)}`,
    "# yas3fs mounts with allow_other, which FUSE refuses unless this is on.",
    "sed -i -E 's/^#[[:space:]]*user_allow_other/user_allow_other/' /etc/fuse.conf",
    "grep -q '^user_allow_other' /etc/fuse.conf || echo user_allow_other >>/etc/fuse.conf",
    "",
    "# The worker bundle, from its S3 asset.",
    `retry aws s3 cp --only-show-errors --region ${q(input.region)} ${q(input.bundleUrl)} ${q(p.bundle)}`,
    "",
    ...files,
    `chmod 0755 ${Object.keys(hooks)
      .map((n) => q(`${p.hooks}/${n}`))
      .join(" ")}`,
    `chmod 0644 ${q(p.envFile)}`,
    "",
    "systemctl daemon-reload",
    `systemctl enable --now ${q(p.unit)}`,
    "",
  ].join("\n");
}

/** A bash function `retry CMD…`, shared by the boot scripts. */
export const RETRY_FUNCTION = [
  "# Runs a command up to 5 times, 10 s apart: package mirrors and S3 can fail for a moment at boot.",
  "retry() {",
  "  local attempt",
  "  for attempt in 1 2 3 4 5; do",
  '    if "$@"; then return 0; fi',
  '    echo "attempt ${attempt} of: $* failed" >&2',
  "    sleep 10",
  "  done",
  "  return 1",
  "}",
].join("\n");

/**
 * Bash: `matches VALUE ERE` in the C locale (where `[A-Z]` is only A to Z), and the run-id shape the master
 * accepts (`RUN_ID_SHAPE` of core/deployment.ts). `=~` anchors at the ends of the whole value, so a value
 * with a newline in it never matches.
 */
export const MATCHES_FUNCTION = [
  "matches() {",
  "  local LC_ALL=C",
  "  [[ $1 =~ $2 ]]",
  "}",
  `readonly RUN_ID_SHAPE=${q(RUN_ID_SHAPE)}`,
].join("\n");

/** Bash: IMDSv2 `imds PATH` (the token is asked for each call). */
export const IMDS_FUNCTION = [
  "imds() {",
  "  local token",
  '  token=$(curl -sSf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" http://169.254.169.254/latest/api/token)',
  '  curl -sSf -H "X-aws-ec2-metadata-token: ${token}" "http://169.254.169.254/latest/$1"',
  "}",
].join("\n");

/** Mounts `$SOURCE_EXPORT` read-only at `$SOURCE_MOUNT`: the same on workers and on the master host. */
export const MOUNT_SOURCE =
  'mount -t nfs4 -o ro,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport "$SOURCE_EXPORT" "$SOURCE_MOUNT"';

function mountTarget(input: WorkerBootInput): string {
  const t = input.target;
  const url = t.prefix ? `s3://${t.bucket}/${t.prefix}` : `s3://${t.bucket}`;
  const topic = t.yas3fsTopicArn ? ` --topic ${q(t.yas3fsTopicArn)} --new-queue` : "";
  return script("Mounts the target bucket with yas3fs (before INITIALIZED, and again before VALIDATE).", [
    `readonly TARGET_MOUNT=${q(t.mountPoint)}`,
    `mkdir -p "$TARGET_MOUNT" ${q(WORKER_PATHS.cacheDir)}`,
    'if mountpoint -q "$TARGET_MOUNT"; then exit 0; fi',
    "# yas3fs computes 'now' correctly only in UTC. It goes to the background once mounted.",
    `TZ=UTC yas3fs ${q(url)} "$TARGET_MOUNT" --region ${q(input.region)} \\`,
    `  --cache-path ${q(`${WORKER_PATHS.cacheDir}/cache`)} --cache-on-disk 0 --cache-disk-size ${t.cacheMiB} \\`,
    `  --recheck-s3 --download-retries-num 10 --st-blksize 131072 -l ${q(WORKER_PATHS.yas3fsLog)}${topic}`,
    "for _ in $(seq 60); do",
    '  if mountpoint -q "$TARGET_MOUNT"; then exit 0; fi',
    "  sleep 1",
    "done",
    'echo "yas3fs did not mount ${TARGET_MOUNT} within 60 s; see the yas3fs log" >&2',
    "exit 1",
  ]);
}

function unmountTarget(input: WorkerBootInput): string {
  return script(
    "Unmounts the yas3fs target and waits until yas3fs has finished its uploads (it keeps running until then).",
    [
      `readonly TARGET_MOUNT=${q(input.target.mountPoint)}`,
      'if mountpoint -q "$TARGET_MOUNT"; then fusermount -u "$TARGET_MOUNT"; fi',
      "for _ in $(seq 600); do",
      '  if ! pgrep -f "yas3fs .* ${TARGET_MOUNT}( |$)" >/dev/null; then exit 0; fi',
      "  sleep 1",
      "done",
      'echo "yas3fs for ${TARGET_MOUNT} still running after 600 s" >&2',
      "exit 1",
    ],
  );
}

function beforeInitialized(input: WorkerBootInput): string {
  const p = WORKER_PATHS;
  return script(
    "Before the worker announces itself (systemd ExecStartPre): names the worker after its instance and its run, then mounts the source and the target.",
    [
      `readonly SOURCE_EXPORT=${q(input.source.nfsExport)}`,
      `readonly SOURCE_MOUNT=${q(input.source.mountPoint)}`,
      `readonly INSTANCE_ENV=${q(p.instanceEnvFile)}`,
      MATCHES_FUNCTION,
      "",
      "# Instance metadata (IMDSv2): the instance id names the worker, so the master knows which instance reported;",
      "# the run tag (set by the master at launch) makes the worker join only that run.",
      IMDS_FUNCTION,
      "instance_id=$(imds meta-data/instance-id)",
      `run_id=$(imds ${q(`meta-data/tags/instance/${input.runTagKey}`)} || true)`,
      `rm -f "$INSTANCE_ENV"`,
      "# Both go into an environment file that systemd reads after the worker's settings: a value of another shape",
      "# (a newline and a second setting, say) could change those settings. Refuse it, and end the instance.",
      "refuse() {",
      '  echo "s3-bucket-loader: refusing to start the worker: $1" >&2',
      "  systemctl --no-block poweroff",
      "  exit 1",
      "}",
      "if ! matches \"$instance_id\" '^i-[0-9a-f]{8,32}$'; then",
      '  refuse "instance metadata gave $(printf %q "${instance_id:0:100}") as the instance id"',
      "fi",
      'if [ -n "$run_id" ] && ! matches "$run_id" "$RUN_ID_SHAPE"; then',
      `  refuse "the instance's ${input.runTagKey} tag $(printf %q "\${run_id:0:100}") is not a run id (1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)"`,
      "fi",
      'mkdir -p "$(dirname "$INSTANCE_ENV")"',
      "{",
      `  echo "${ENV.workerId}=\${instance_id}"`,
      `  if [ -n "$run_id" ]; then echo "${ENV.runId}=\${run_id}"; fi`,
      '} >"$INSTANCE_ENV"',
      "",
      "# The source is only read.",
      'mkdir -p "$SOURCE_MOUNT"',
      'if ! mountpoint -q "$SOURCE_MOUNT"; then',
      `  ${MOUNT_SOURCE}`,
      "fi",
      `${q(`${p.hooks}/mount-target.sh`)}`,
    ],
  );
}

function beforeValidate(): string {
  const h = WORKER_PATHS.hooks;
  return script(
    "Before VALIDATE: remounts the target with an empty cache, so that validation reads what is in S3, not what yas3fs still holds.",
    [
      `${q(`${h}/unmount-target.sh`)}`,
      `find ${q(WORKER_PATHS.cacheDir)} -mindepth 1 -delete`,
      `${q(`${h}/mount-target.sh`)}`,
    ],
  );
}

function atShutdown(input: WorkerBootInput): string {
  const p = WORKER_PATHS;
  const logs = `s3://${input.logs.bucket}/${input.logs.prefix}`;
  return script(
    "After the worker stops (systemd ExecStopPost): uploads the logs under the run id. When the worker ended its run by itself, also unmounts and powers the instance off (the launch template makes that a termination).",
    [
      `readonly INSTANCE_ENV=${q(p.instanceEnvFile)}`,
      `readonly LOGS_URL=${q(logs)}`,
      `readonly SOURCE_MOUNT=${q(input.source.mountPoint)}`,
      `run_id=$(sed -n 's/^${ENV.runId}=//p' "$INSTANCE_ENV" 2>/dev/null || true)`,
      `worker_id=$(sed -n 's/^${ENV.workerId}=//p' "$INSTANCE_ENV" 2>/dev/null || true)`,
      "stamp=$(date -u +%Y%m%dT%H%M%SZ)",
      'dest="${LOGS_URL}/${run_id:-no-run}/${worker_id:-$(hostname)}"',
      "tmp=$(mktemp -d)",
      `journalctl -u ${q(p.unit)} -b --no-pager -o short-iso >"\${tmp}/worker-\${stamp}.log" || true`,
      `if [ -f ${q(p.yas3fsLog)} ]; then cp ${q(p.yas3fsLog)} "\${tmp}/yas3fs-\${stamp}.log"; fi`,
      'gzip -f "$tmp"/*.log',
      `aws s3 cp --only-show-errors --region ${q(input.region)} --recursive "$tmp" "$dest/" || echo "could not upload the logs to \${dest}" >&2`,
      'rm -rf "$tmp"',
      "",
      "# EXIT_CODE/EXIT_STATUS come from systemd: the worker exited 0 by itself only when its run was over.",
      "# (A `systemctl stop` ends it with SIGTERM, exit 130: then the mounts stay and the instance stays up.)",
      'if [ "${EXIT_CODE:-}" = exited ] && [ "${EXIT_STATUS:-}" = 0 ]; then',
      `  ${q(`${p.hooks}/unmount-target.sh`)} || true`,
      '  umount "$SOURCE_MOUNT" || true',
      "  systemctl --no-block poweroff",
      "fi",
    ],
  );
}

export function script(purpose: string, body: readonly string[]): string {
  return ["#!/bin/bash", `# ${purpose}`, "set -euo pipefail", "", ...body, ""].join("\n");
}

/** A file written by the boot script; the quoted delimiter keeps the text verbatim (no expansion). */
export function heredoc(path: string, text: string): string {
  const marker = "S3BL_EOF";
  if (text.split("\n").includes(marker)) throw new Error(`${path}: content contains the heredoc marker`);
  const body = text.endsWith("\n") ? text : `${text}\n`;
  return `cat >${q(path)} <<'${marker}'\n${body}${marker}\n`;
}

/** Quotes a word for bash: as is when it is plain, else in single quotes. */
export function q(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
