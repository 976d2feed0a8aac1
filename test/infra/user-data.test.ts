// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is bash, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ENV } from "../../core/env-names.ts";
import {
  q,
  renderEnvFile,
  renderHooks,
  renderUnit,
  renderWorkerUserData,
  type WorkerBootInput,
} from "../../lib/user-data.ts";
import { shellcheck } from "../helpers/shellcheck.ts";

const input: WorkerBootInput = {
  region: "eu-west-1",
  bundleUrl: "s3://cdk-assets-123456789012-eu-west-1/abc.mjs",
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
      /aws s3 cp --only-show-errors --region eu-west-1 s3:\/\/cdk-assets-123456789012-eu-west-1\/abc\.mjs \/opt\/s3-bucket-loader\/worker\.mjs/,
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
      "ExecStart=/opt/s3-bucket-loader/node /opt/s3-bucket-loader/worker.mjs",
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
