// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is bash, not a JS template.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { RUN_ID_SHAPE } from "../../core/deployment.ts";
import { ENV } from "../../core/env-names.ts";
import {
  MATCHES_FUNCTION,
  q,
  renderEnvFile,
  renderHooks,
  renderUnit,
  renderWorkerUserData,
  WORKER_PATHS,
  type WorkerBootInput,
} from "../../lib/user-data.ts";
import { masterSettings } from "../../master/settings.ts";
import { shellcheck } from "../helpers/shellcheck.ts";
import { runInSandbox } from "./boot-sandbox.ts";

const input: WorkerBootInput = {
  region: "eu-west-1",
  bundleUrl: "s3://cdk-assets-123456789012-eu-west-1/abc.cjs",
  source: { nfsExport: "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com:/", mountPoint: "/mnt/source" },
  target: {
    bucket: "my-data",
    prefix: "loads/2024",
    mountPoint: "/mnt/s3",
    cacheMiB: 20_000,
    yas3fsRef: "5bbf829",
  },
  logs: { bucket: "my-logs", prefix: "logs" },
  runTagKey: "s3bl-run-id",
  env: {
    [ENV.region]: "eu-west-1",
    [ENV.topicArn]: "arn:aws:sns:eu-west-1:123456789012:control",
    [ENV.tocQueueUrl]: "https://sqs.eu-west-1.amazonaws.com/123456789012/toc",
    [ENV.source]: "/mnt/source",
    [ENV.target]: "/mnt/s3",
  },
};

describe("the worker boot script", () => {
  const script = renderWorkerUserData(input);
  const hooks = renderHooks(input);

  it("passes shellcheck, and so does every hook", () => {
    assert.equal(shellcheck("user-data.sh", script), "");
    assert.equal(
      shellcheck(
        "user-data-topic.sh",
        renderWorkerUserData({
          ...input,
          target: { ...input.target, yas3fsTopicArn: "arn:aws:sns:eu-west-1:123456789012:y" },
        }),
      ),
      "",
    );
    for (const [name, text] of Object.entries(hooks)) assert.equal(shellcheck(name, text), "", name);
  });

  it("can fail shellcheck (the check is real)", () => {
    assert.notEqual(shellcheck("bad.sh", "#!/bin/bash\nrm -rf $1/*\n"), "");
  });

  it("stops at the first failing command", () => {
    assert.match(script, /^#!\/bin\/bash\n(#.*\n)*set -euo pipefail\n/);
    for (const text of Object.values(hooks)) assert.match(text, /\nset -euo pipefail\n/);
  });

  it("installs Node 22, FUSE 2, Python 3, NFS and yas3fs from its git repository at the given commit", () => {
    assert.match(script, /dnf install -y nodejs22 fuse fuse-libs python3 python3-pip git nfs-utils/);
    assert.match(script, /git clone --quiet https:\/\/github\.com\/danilop\/yas3fs\.git \/opt\/yas3fs/);
    assert.match(script, /checkout --quiet 5bbf829/);
    assert.match(script, /pip3 install --quiet \/opt\/yas3fs/);
    assert.match(
      script,
      /user_allow_other' \/etc\/fuse\.conf \|\| echo user_allow_other >>\/etc\/fuse\.conf/,
    );
  });

  it("downloads the bundle from its asset and starts the service", () => {
    assert.match(
      script,
      /aws s3 cp --only-show-errors --region eu-west-1 s3:\/\/cdk-assets-123456789012-eu-west-1\/abc\.cjs \/opt\/s3-bucket-loader\/worker\.cjs/,
    );
    assert.match(script, /systemctl enable --now s3-bucket-loader-worker\.service\n$/);
  });

  it("writes the worker's settings under the names the worker reads", () => {
    const env = renderEnvFile(input.env);
    assert.equal(
      env,
      [
        "AWS_REGION=eu-west-1",
        "S3BL_TOPIC_ARN=arn:aws:sns:eu-west-1:123456789012:control",
        "S3BL_TOC_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/toc",
        "S3BL_SOURCE=/mnt/source",
        "S3BL_TARGET=/mnt/s3",
        "",
      ].join("\n"),
    );
    assert.ok(script.includes(`cat >/etc/s3-bucket-loader/worker.env <<'S3BL_EOF'\n${env}S3BL_EOF\n`));
  });

  it("fails on a setting that would break the environment file", () => {
    assert.throws(
      () => renderEnvFile({ [ENV.source]: "/mnt/my source" }),
      /S3BL_SOURCE: got "\/mnt\/my source"; expected a value without spaces/,
    );
    assert.throws(() => renderEnvFile({ [ENV.source]: "/a\nB=1" }), /S3BL_SOURCE/);
  });

  it("runs the worker as a journald-logged service that restarts on failure, with the hooks around it", () => {
    const unit = renderUnit();
    for (const line of [
      "EnvironmentFile=/etc/s3-bucket-loader/worker.env",
      "EnvironmentFile=-/run/s3-bucket-loader/instance.env",
      "ExecStartPre=/opt/s3-bucket-loader/hooks/before-initialized.sh",
      "ExecStart=/opt/s3-bucket-loader/node /opt/s3-bucket-loader/worker.cjs",
      "ExecStopPost=/opt/s3-bucket-loader/hooks/at-shutdown.sh",
      "Restart=on-failure",
      "StandardOutput=journal",
      "WantedBy=multi-user.target",
    ]) {
      assert.ok(unit.split("\n").includes(line), line);
    }
    assert.ok(script.includes(unit));
  });

  it("mounts the source read-only over NFS 4.1 and the bucket with yas3fs in UTC", () => {
    assert.match(
      hooks["before-initialized.sh"],
      /mount -t nfs4 -o ro,nfsvers=4\.1,[^ ]* "\$SOURCE_EXPORT" "\$SOURCE_MOUNT"/,
    );
    assert.match(
      hooks["before-initialized.sh"],
      /readonly SOURCE_EXPORT=fs-0123456789abcdef0\.efs\.eu-west-1\.amazonaws\.com:\//,
    );
    assert.match(
      hooks["mount-target.sh"],
      /TZ=UTC yas3fs s3:\/\/my-data\/loads\/2024 "\$TARGET_MOUNT" --region eu-west-1/,
    );
    assert.match(hooks["mount-target.sh"], /--cache-disk-size 20000/);
    assert.doesNotMatch(hooks["mount-target.sh"], /--topic/);
    const withTopic = renderHooks({
      ...input,
      target: { ...input.target, yas3fsTopicArn: "arn:aws:sns:eu-west-1:123456789012:y" },
    });
    assert.match(withTopic["mount-target.sh"], /--topic arn:aws:sns:eu-west-1:123456789012:y --new-queue/);
    assert.match(
      renderHooks({ ...input, target: { ...input.target, prefix: "" } })["mount-target.sh"],
      /yas3fs s3:\/\/my-data "\$TARGET_MOUNT"/,
    );
  });

  it("names the worker after its instance and its run after the instance's run tag", () => {
    const h = hooks["before-initialized.sh"];
    assert.match(h, /imds meta-data\/instance-id/);
    assert.match(h, /imds meta-data\/tags\/instance\/s3bl-run-id/);
    assert.match(h, new RegExp(`echo "${ENV.workerId}=\\$\\{instance_id\\}"`));
    assert.match(h, new RegExp(`echo "${ENV.runId}=\\$\\{run_id\\}"`));
  });

  it("remounts with an empty cache before VALIDATE, and uploads logs under the run id at shutdown", () => {
    assert.match(
      hooks["before-validate.sh"],
      /unmount-target\.sh\nfind \/var\/cache\/yas3fs -mindepth 1 -delete\n.*mount-target\.sh/,
    );
    const down = hooks["at-shutdown.sh"];
    assert.match(down, /readonly LOGS_URL=s3:\/\/my-logs\/logs/);
    assert.match(down, /dest="\$\{LOGS_URL\}\/\$\{run_id:-no-run\}\/\$\{worker_id:-\$\(hostname\)\}"/);
    assert.match(
      down,
      /if \[ "\$\{EXIT_CODE:-\}" = exited \] && \[ "\$\{EXIT_STATUS:-\}" = 0 \]; then\n.*unmount-target\.sh/,
    );
    assert.match(down, /systemctl --no-block poweroff/);
  });

  it("holds no secret", () => {
    assert.doesNotMatch(script, /AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|aws_session_token/i);
  });

  it("quotes words for bash only when needed", () => {
    assert.equal(q("/mnt/s3"), "/mnt/s3");
    assert.equal(q("${Token[X]}"), "'${Token[X]}'");
    assert.equal(q("it's"), "'it'\\''s'");
  });
});

describe("the worker's run tag at boot", () => {
  const hook = renderHooks(input)["before-initialized.sh"];
  const boot = (tags: Record<string, string>, instanceId?: string) =>
    runInSandbox(hook, {
      tags,
      ...(instanceId ? { instanceId } : {}),
      paths: [WORKER_PATHS.instanceEnvFile, WORKER_PATHS.hooks, input.source.mountPoint],
      stubs: { [`${WORKER_PATHS.hooks}/mount-target.sh`]: "$RECORD" },
    });

  it("writes the worker id and a run id of the master's shape into the instance's environment file", () => {
    const r = boot({ "s3bl-run-id": "load-2024.01_a" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.file(WORKER_PATHS.instanceEnvFile),
      `${ENV.workerId}=i-0123456789abcdef0\n${ENV.runId}=load-2024.01_a\n`,
    );
    assert.ok(r.calls.some((c) => c.startsWith("mount -t nfs4 -o ro,")));
    assert.ok(r.calls.includes(`${WORKER_PATHS.hooks}/mount-target.sh `));
  });

  it("joins the first run it hears when the instance has no run tag", () => {
    const r = boot({});
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.file(WORKER_PATHS.instanceEnvFile), `${ENV.workerId}=i-0123456789abcdef0\n`);
  });

  for (const [what, tag] of [
    ["a second setting on a new line", `load-1\n${ENV.beforeValidateCmd}=/tmp/evil.sh`],
    ["a space", "load 1"],
    ["a shell expansion", "$(touch /tmp/owned)"],
    ["a path", "../../etc"],
    ["a leading dash", "-load"],
    ["65 characters", "a".repeat(65)],
    ["a letter outside ASCII", "lädt"],
  ] as const) {
    it(`refuses a run tag with ${what}: a clear log line, no environment file, no mount, and the instance ends`, () => {
      const r = boot({ "s3bl-run-id": tag });
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /^s3-bucket-loader: refusing to start the worker: the instance's s3bl-run-id tag .* is not a run id \(1-64 letters, digits, '\.', '_' or '-', starting with a letter or digit\)\n$/,
      );
      assert.equal(r.file(WORKER_PATHS.instanceEnvFile), undefined);
      assert.deepEqual(r.calls, ["systemctl --no-block poweroff"]);
    });
  }

  it("refuses an instance id that is not one", () => {
    const r = boot({ "s3bl-run-id": "load-1" }, "i-1\nS3BL_RUN_ID=other");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /refusing to start the worker: instance metadata gave .* as the instance id/);
    assert.equal(r.file(WORKER_PATHS.instanceEnvFile), undefined);
  });

  it("accepts in bash exactly the run ids the master's settings accept", () => {
    const shape = new RegExp(RUN_ID_SHAPE);
    for (const id of [
      "a",
      "A1",
      "0.9",
      "x_y-z.w",
      "a".repeat(64),
      "a".repeat(65),
      "_a",
      ".a",
      "a b",
      "a/b",
      "é",
      "a\nb",
    ]) {
      const r = spawnSync("bash", ["-c", `${MATCHES_FUNCTION}\nmatches "$1" "$RUN_ID_SHAPE"`, "_", id], {
        env: { LANG: "C.UTF-8", PATH: "/usr/bin:/bin" },
      });
      assert.equal(r.status === 0, shape.test(id), JSON.stringify(id));
      assert.equal(masterSettings.runId.schema.safeParse(id).success, shape.test(id), JSON.stringify(id));
    }
  });
});
