import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { STACK_OUTPUTS } from "../../core/deployment.ts";
import { loaderStack, userDataOf } from "./fixture.ts";

const statementsOf = (template: Template, type: string, filter: Record<string, unknown> = {}) =>
  Object.values(template.findResources(type, filter)).flatMap(
    (r) => (r.Properties.PolicyDocument.Statement as Record<string, unknown>[]) ?? [],
  );
const actionsOf = (s: Record<string, unknown>) => [s.Action].flat() as string[];

describe("the deployable stack", () => {
  const stack = loaderStack({ targetPrefix: "loads/2024", instanceType: "c6i.xlarge" });
  const template = Template.fromStack(stack);
  const json = template.toJSON();

  it("launches workers from Amazon Linux 2023 (public SSM parameter) with IMDSv2 only and instance tags readable", () => {
    template.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({
        InstanceType: "c6i.xlarge",
        ImageId: { Ref: Match.stringLikeRegexp("SsmParameterValueawsserviceamiamazonlinuxlatestal2023") },
        MetadataOptions: {
          HttpTokens: "required",
          HttpPutResponseHopLimit: 1,
          InstanceMetadataTags: "enabled",
        },
        InstanceInitiatedShutdownBehavior: "terminate",
        IamInstanceProfile: { Arn: Match.anyValue() },
      }),
    });
    const params = json.Parameters as Record<string, { Default?: string }>;
    assert.ok(
      Object.values(params).some((p) => p.Default?.includes("/aws/service/ami-amazon-linux-latest/al2023")),
      "the AMI comes from the public SSM parameter",
    );
  });

  it("gives workers an encrypted gp3 root volume that goes with the instance", () => {
    template.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({
        BlockDeviceMappings: [
          {
            DeviceName: "/dev/xvda",
            Ebs: { Encrypted: true, VolumeType: "gp3", VolumeSize: 100, DeleteOnTermination: true },
          },
        ],
      }),
    });
  });

  it("puts workers in a security group with no inbound rule", () => {
    const groups = template.findResources("AWS::EC2::SecurityGroup");
    assert.equal(Object.keys(groups).length, 1);
    for (const g of Object.values(groups)) assert.equal(g.Properties.SecurityGroupIngress, undefined);
    template.resourceCountIs("AWS::EC2::SecurityGroupIngress", 0);
  });

  it("creates a small VPC with public subnets, an S3 endpoint and no NAT gateway", () => {
    template.resourceCountIs("AWS::EC2::VPC", 1);
    template.resourceCountIs("AWS::EC2::NatGateway", 0);
    template.resourceCountIs("AWS::EC2::Subnet", 2);
    template.hasResourceProperties("AWS::EC2::Subnet", { MapPublicIpOnLaunch: true });
    template.hasResourceProperties("AWS::EC2::VPCEndpoint", { VpcEndpointType: "Gateway" });
  });

  it("creates the target bucket unversioned, encrypted, private, TLS-only, and keeps it on destroy", () => {
    const buckets = template.findResources("AWS::S3::Bucket");
    assert.equal(Object.keys(buckets).length, 2, "the target bucket and the logs bucket");
    for (const b of Object.values(buckets)) {
      assert.equal(b.DeletionPolicy, "Retain");
      assert.equal(b.UpdateReplacePolicy, "Retain");
      assert.equal(b.Properties.VersioningConfiguration, undefined);
      assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      assert.ok(b.Properties.BucketEncryption, "encrypted");
    }
    template.resourcePropertiesCountIs(
      "AWS::S3::BucketPolicy",
      {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
          ]),
        },
      },
      2,
    );
  });

  it("ships the worker bundle as an S3 asset and boots it as a systemd service", () => {
    const script = userDataOf(json);
    assert.match(script, /^#!\/bin\/bash\n/);
    assert.match(script, /set -euo pipefail/);
    assert.match(
      script,
      /aws s3 cp .*s3:\/\/cdk-hnb659fds-assets-.*\.cjs'? \/opt\/s3-bucket-loader\/worker\.cjs/,
    );
    assert.match(script, /ExecStart=\/opt\/s3-bucket-loader\/node \/opt\/s3-bucket-loader\/worker\.cjs/);
    assert.match(script, /S3BL_TOC_QUEUE_URL=\$\{MessagingTocQueue\w+\}/);
    assert.match(script, /S3BL_TOPIC_ARN=\$\{MessagingControlTopic\w+\}/);
    assert.match(script, /TZ=UTC yas3fs 's3:\/\/\$\{TargetBucket\w+\}\/loads\/2024' /);
    assert.doesNotMatch(script, /--topic/, "no yas3fs topic unless configured");
  });

  it("outputs every ARN, URL, id and name the master needs, under the names the master reads", () => {
    const outputs = template.findOutputs("*");
    assert.deepEqual(Object.keys(outputs).sort(), Object.values(STACK_OUTPUTS).sort());
  });

  it("imports an existing bucket by name and never manages it", () => {
    const t = Template.fromStack(loaderStack({ targetBucket: "my-data", createBucket: false }));
    t.resourceCountIs("AWS::S3::Bucket", 1); // the logs bucket only
    assert.equal(t.findOutputs(STACK_OUTPUTS.targetBucket)[STACK_OUTPUTS.targetBucket]?.Value, "my-data");
    assert.match(userDataOf(t.toJSON()), /TZ=UTC yas3fs s3:\/\/my-data "\$TARGET_MOUNT"/);
  });

  it("joins yas3fs's invalidation topic when one is given", () => {
    const topic = "arn:aws:sns:eu-west-1:123456789012:yas3fs";
    const t = Template.fromStack(loaderStack({ yas3fsTopicArn: topic }));
    assert.match(userDataOf(t.toJSON()), new RegExp(`--topic ${topic} --new-queue`));
    const worker = statementsOf(t, "AWS::IAM::Policy");
    assert.ok(worker.some((s) => actionsOf(s).includes("sns:Publish") && s.Resource === topic));
  });

  it("runs the workers in an existing VPC when vpcId is given (looked up, no VPC created)", () => {
    const t = Template.fromStack(
      loaderStack(
        { vpcId: "vpc-0123456789abcdef0" },
        { env: { account: "123456789012", region: "us-east-1" } },
      ),
    );
    t.resourceCountIs("AWS::EC2::VPC", 0);
    t.hasResourceProperties("AWS::EC2::SecurityGroup", { VpcId: "vpc-12345" });
  });

  it("runs the workers in the public subnets of an existing VPC that has no private ones (as every default VPC)", () => {
    const env = { account: "123456789012", region: "us-east-1" };
    const vpcId = "vpc-0a1b2c3d4e5f60718";
    // The lookup's answer is given as CDK context, under the key the first synth asks for.
    const probe = new App();
    loaderStack({ vpcId }, { app: probe, env });
    const key = probe.synth().manifest.missing?.find((m) => m.provider === "vpc-provider")?.key;
    assert.ok(key, "the stack looks the VPC up");
    const publicOnly = {
      vpcId,
      vpcCidrBlock: "172.31.0.0/16",
      ownerAccountId: env.account,
      availabilityZones: [],
      subnetGroups: [
        {
          name: "Public",
          type: "Public",
          subnets: [
            {
              subnetId: "subnet-0aaaaaaaaaaaaaaa1",
              cidr: "172.31.0.0/20",
              availabilityZone: "us-east-1a",
              routeTableId: "rtb-01",
            },
            {
              subnetId: "subnet-0aaaaaaaaaaaaaaa2",
              cidr: "172.31.16.0/20",
              availabilityZone: "us-east-1b",
              routeTableId: "rtb-01",
            },
          ],
        },
      ],
    };
    const t = Template.fromStack(
      loaderStack({ vpcId }, { app: new App({ context: { [key]: publicOnly } }), env }),
    );
    t.resourceCountIs("AWS::EC2::VPC", 0);
    t.hasResourceProperties("AWS::EC2::SecurityGroup", { VpcId: vpcId });
    assert.equal(
      t.findOutputs(STACK_OUTPUTS.subnetIds)[STACK_OUTPUTS.subnetIds]?.Value,
      "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    );
  });

  it("fails on an existing VPC with neither public nor private subnets, naming it", () => {
    const env = { account: "123456789012", region: "us-east-1" };
    const vpcId = "vpc-0a1b2c3d4e5f60719";
    const probe = new App();
    loaderStack({ vpcId }, { app: probe, env });
    const key = probe.synth().manifest.missing?.find((m) => m.provider === "vpc-provider")?.key ?? "";
    const isolatedOnly = {
      vpcId,
      vpcCidrBlock: "10.0.0.0/16",
      availabilityZones: [],
      subnetGroups: [
        {
          name: "Isolated",
          type: "Isolated",
          subnets: [
            {
              subnetId: "subnet-0bbbbbbbbbbbbbbb1",
              cidr: "10.0.0.0/20",
              availabilityZone: "us-east-1a",
              routeTableId: "rtb-02",
            },
          ],
        },
      ],
    };
    assert.throws(
      () => loaderStack({ vpcId }, { app: new App({ context: { [key]: isolatedOnly } }), env }),
      new RegExp(`vpcId ${vpcId}: the VPC has no private subnets with egress and no public subnets`),
    );
  });

  it("picks the arm64 AMI for a Graviton instance type", () => {
    const t = Template.fromStack(loaderStack({ instanceType: "c7g.large" }));
    const params = t.toJSON().Parameters as Record<string, { Default?: string }>;
    assert.ok(Object.values(params).some((p) => p.Default?.includes("arm64")));
  });

  it("has no unacknowledged cdk-nag AwsSolutions finding, with or without the optional parts", () => {
    for (const settings of [
      {},
      {
        targetBucket: "my-data",
        createBucket: false,
        targetPrefix: "a/b",
        yas3fsTopicArn: "arn:aws:sns:us-east-1:123456789012:yas3fs",
      },
    ]) {
      const app = new App();
      loaderStack(settings, { app });
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      assert.doesNotThrow(() => app.synth(), `AwsSolutions findings with ${JSON.stringify(settings)}`);
    }
  });
});
