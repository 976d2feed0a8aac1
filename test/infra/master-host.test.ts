// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is bash, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Match, Template } from "aws-cdk-lib/assertions";
import { STACK_OUTPUTS } from "../../core/deployment.ts";
import {
  MASTER_PATHS,
  type MasterBootInput,
  renderMasterUnit,
  renderMasterUserData,
  renderPublishScript,
  renderRunMasterScript,
} from "../../lib/master-user-data.ts";
import { shellcheck } from "../helpers/shellcheck.ts";
import { runInSandbox } from "./boot-sandbox.ts";
import { loaderStack, userDataOf } from "./fixture.ts";

const input: MasterBootInput = {
  region: "eu-west-1",
  bundleUrl: "s3://cdk-assets-123456789012-eu-west-1/abc.cjs",
  stackName: "S3BucketLoader",
  source: { nfsExport: "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com:/", mountPoint: "/mnt/source" },
  runs: { bucket: "my-logs", prefix: "runs" },
  runTagKey: "s3bl-run-id",
  argsTagKey: "s3bl-master-args",
};

describe("the master host's boot script", () => {
  const script = renderMasterUserData(input);
  const run = renderRunMasterScript(input);

  it("passes shellcheck, and so do the run and publish scripts", () => {
    assert.equal(shellcheck("master-user-data.sh", script), "");
    assert.equal(shellcheck("run-master.sh", run), "");
    assert.equal(shellcheck("publish-run.sh", renderPublishScript(input)), "");
  });

  it("installs Node 22 and NFS, fetches the CLI bundle, and starts the master's service", () => {
    assert.match(script, /^#!\/bin\/bash\n(#.*\n)*set -euo pipefail\n/);
    assert.match(script, /retry dnf install -y nodejs22 nfs-utils\n/);
    assert.match(
      script,
      /retry aws s3 cp --only-show-errors --region eu-west-1 s3:\/\/cdk-assets-123456789012-eu-west-1\/abc\.cjs \/opt\/s3-bucket-loader\/s3-bucket-loader\.cjs\n/,
    );
    assert.match(script, /cat >\/opt\/s3-bucket-loader\/run-master\.sh <<'S3BL_EOF'\n/);
    assert.match(script, /systemctl enable --now s3-bucket-loader-master\.service\n$/);
  });

  it("mounts the source read-only as the workers do", () => {
    assert.match(run, /mount -t nfs4 -o ro,nfsvers=4\.1,.* "\$SOURCE_EXPORT" "\$SOURCE_MOUNT"/);
    assert.match(run, /readonly SOURCE_EXPORT=fs-0123456789abcdef0\.efs\.eu-west-1\.amazonaws\.com:\/\n/);
  });

  it("runs the master of the stack with --launch, the run id and the arguments from the instance's tags", () => {
    assert.match(run, /meta-data\/tags\/instance\/s3bl-run-id/);
    assert.match(run, /meta-data\/tags\/instance\/s3bl-master-args/);
    assert.match(
      run,
      /exec \/opt\/s3-bucket-loader\/node \/opt\/s3-bucket-loader\/s3-bucket-loader\.cjs master --stack S3BucketLoader --source "\$SOURCE_MOUNT" --launch/,
    );
    assert.match(run, /--run-id "\$run_id" --state-dir "\$STATE_DIR" --report /);
    assert.match(run, /\$\{args\[@\]\+"\$\{args\[@\]\}"\}/);
  });

  it("publishes the status while running, and the status, report, exit code and journal at the end", () => {
    assert.match(
      run,
      /aws s3 cp --only-show-errors "\$status_file" "\$\{RUNS_URL\}\/\$\{run_id\}\/status\.json"/,
    );
    const publish = renderPublishScript(input);
    assert.match(publish, /readonly RUNS_URL=s3:\/\/my-logs\/runs\n/);
    for (const f of ["status.json", "report.json", "exit-code", "master.log.gz"])
      assert.ok(publish.includes(f), f);
    assert.match(publish, /systemctl --no-block poweroff\n$/);
  });

  it("runs the master once: the unit is not restarted, and publishes when it stops", () => {
    const unit = renderMasterUnit();
    assert.match(unit, /\nExecStart=\/opt\/s3-bucket-loader\/run-master\.sh\n/);
    assert.match(unit, /\nExecStopPost=\/opt\/s3-bucket-loader\/publish-run\.sh\n/);
    assert.match(unit, /\nRestart=no\n/);
  });
});

describe("the master host in the stack", () => {
  const stack = loaderStack();
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: never }> };

  it("has a launch template of its own: IMDSv2 with tags, encrypted root, terminated on power-off", () => {
    template.resourceCountIs("AWS::EC2::LaunchTemplate", 2);
    template.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: {
          HttpTokens: "required",
          HttpPutResponseHopLimit: 1,
          InstanceMetadataTags: "enabled",
        },
        InstanceInitiatedShutdownBehavior: "terminate",
        BlockDeviceMappings: [
          Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true, DeleteOnTermination: true }) }),
        ],
        IamInstanceProfile: {
          Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("^MasterHostInstanceProfile"), "Arn"] },
        },
        SecurityGroupIds: [
          { "Fn::GetAtt": [Match.stringLikeRegexp("^NetworkWorkerSecurityGroup"), "GroupId"] },
        ],
      }),
    });
    template.resourceCountIs("AWS::EC2::SecurityGroupIngress", 0);
  });

  it("boots from the CLI bundle asset and runs the master of this stack", () => {
    const script = userDataOf(json, "MasterHost");
    assert.match(
      script,
      /s3-bucket-loader\.cjs master --stack S3BucketLoader --source "\$SOURCE_MOUNT" --launch/,
    );
    assert.match(script, /readonly RUNS_URL='?s3:\/\/\$\{LogsBucket[0-9A-F]+\}\/runs'?\n/);
  });

  it("outputs the master launch template id", () => {
    template.hasOutput(STACK_OUTPUTS.masterLaunchTemplateId, {
      Value: { Ref: Match.stringLikeRegexp("^MasterHostLaunchTemplate") },
    });
  });
});

describe("the master host's tags at boot", () => {
  const run = renderRunMasterScript(input);
  const boot = (tags: Record<string, string>) =>
    runInSandbox(run, {
      tags,
      paths: [MASTER_PATHS.runEnvFile, MASTER_PATHS.stateDir, MASTER_PATHS.node, input.source.mountPoint],
      stubs: { [MASTER_PATHS.node]: "$RECORD" },
    });
  const master = (calls: string[]) => calls.find((c) => c.startsWith(`${MASTER_PATHS.node} `));

  it("runs the master with the run id and the argument tag's words, none of them evaluated", () => {
    const r = boot({
      "s3bl-run-id": "load-1",
      "s3bl-master-args": "--workers 20  --note * --x $(touch owned)",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.file(MASTER_PATHS.runEnvFile), "RUN_ID=load-1\n");
    assert.match(master(r.calls) ?? "", / --run-id load-1 /);
    assert.match(master(r.calls) ?? "", / --log-format json --workers 20 --note \* --x \$\(touch owned\)$/);
  });

  it("makes a run id from the boot time when the instance has no run tag", () => {
    const r = boot({});
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.file(MASTER_PATHS.runEnvFile) ?? "", /^RUN_ID=run-\d{8}T\d{6}Z\n$/);
  });

  for (const [what, tag] of [
    ["a second line", "load-1\nx"],
    ["a path", "../../var/lib"],
    ["a space", "load 1"],
  ] as const) {
    it(`refuses a run tag with ${what}: a clear log line, exit 2, nothing written, mounted or run`, () => {
      const r = boot({ "s3bl-run-id": tag });
      assert.equal(r.status, 2);
      assert.match(
        r.stderr,
        /^s3-bucket-loader: refusing to run the master: the instance's s3bl-run-id tag .* is not a run id \(1-64 letters, digits, '\.', '_' or '-', starting with a letter or digit\)\n$/,
      );
      assert.equal(r.file(MASTER_PATHS.runEnvFile), undefined);
      assert.deepEqual(r.calls, []);
    });
  }

  it("refuses an argument tag of more than one line rather than drop the rest", () => {
    const r = boot({ "s3bl-run-id": "load-1", "s3bl-master-args": "--workers 20\n--spot" });
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /^s3-bucket-loader: refusing to run the master: the instance's s3bl-master-args tag .* has more than one line: give the arguments on one line\n$/,
    );
    assert.deepEqual(r.calls, []);
  });
});
