// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} here is how CloudFormation tokens are shown.
/**
 * Every IAM statement of the stack, compared whole: a grant that widens (an action, a resource, a dropped
 * condition, a new statement) fails these tests. The README's privilege sentences describe exactly these.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Template } from "aws-cdk-lib/assertions";
import * as iam from "aws-cdk-lib/aws-iam";
import type { LoaderContext } from "../../lib/context.ts";
import { loaderStack } from "./fixture.ts";
import { managedPoliciesOf, type Statement, statementsOf } from "./policies.ts";

const P = "arn:${AWS::Partition}";
const HERE = "${AWS::Region}:${AWS::AccountId}";
const ec2 = (resource: string) => `${P}:ec2:${HERE}:${resource}`;
const CONTROL_QUEUES = `${P}:sqs:${HERE}:s3bl-w-*`;
const TOPIC = "${MessagingControlTopic}";
const BUNDLE = `${P}:s3:::cdk-hnb659fds-assets-\${AWS::AccountId}-\${AWS::Region}/ASSET_HASH.cjs`;
const SSM = `${P}:iam::aws:policy/AmazonSSMManagedInstanceCore`;
const LAUNCH_TEMPLATE = ec2("launch-template/${WorkersLaunchTemplate}");

const allow = (actions: string[], resources: string[], conditions?: Statement["conditions"]): Statement => ({
  effect: "Allow",
  actions: [...actions].sort(),
  resources: [...resources].sort(),
  ...(conditions ? { conditions } : {}),
});

const sorted = (statements: readonly Statement[]) =>
  [...statements].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

function template(settings: Partial<LoaderContext> = {}) {
  return Template.fromStack(loaderStack(settings)).toJSON();
}

/** The worker role's statements for a target bucket ARN and key prefix. */
function workerStatements(bucketArn: string, prefix: string): Statement[] {
  return [
    allow(
      [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
      ],
      ["${MessagingTocQueue.Arn}"],
    ),
    allow(["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"], ["${MessagingReportQueue.Arn}"]),
    allow(["sns:Subscribe"], [TOPIC], {
      StringEquals: { "sns:Protocol": "sqs" },
      StringLike: { "sns:Endpoint": CONTROL_QUEUES },
    }),
    allow(["sns:Unsubscribe"], [TOPIC]),
    allow(
      [
        "sqs:CreateQueue",
        "sqs:DeleteMessage",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SetQueueAttributes",
      ],
      [CONTROL_QUEUES],
    ),
    allow(
      ["s3:ListBucket"],
      [bucketArn],
      prefix ? { StringLike: { "s3:prefix": `${prefix}/*` } } : undefined,
    ),
    allow(["s3:GetBucketLocation"], [bucketArn]),
    allow(
      [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectTagging",
      ],
      [prefix ? `${bucketArn}/${prefix}/*` : `${bucketArn}/*`],
    ),
    allow(["s3:AbortMultipartUpload", "s3:PutObject"], ["${LogsBucket.Arn}/logs/*"]),
    allow(["s3:GetObject"], [BUNDLE]),
  ];
}

const MASTER: Statement[] = [
  allow(["sns:Publish"], [TOPIC]),
  allow(["kms:Decrypt", "kms:GenerateDataKey*"], ["${MessagingControlTopicKey.Arn}"]),
  allow(["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"], ["${MessagingTocQueue.Arn}"]),
  allow(["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:PurgeQueue"], ["${MessagingTocQueue.Arn}"]),
  allow(["sqs:DeleteMessage", "sqs:ReceiveMessage"], ["${MessagingReportQueue.Arn}"]),
  allow(["sqs:DeleteMessage", "sqs:ReceiveMessage"], ["${MessagingTocDeadLetterQueue.Arn}"]),
  allow(["sqs:GetQueueUrl"], ["${MessagingTocDeadLetterQueue.Arn}"]),
  allow(["sns:Unsubscribe"], [TOPIC]),
  allow(["sqs:DeleteQueue"], [CONTROL_QUEUES]),
  allow(["ec2:RunInstances"], [LAUNCH_TEMPLATE]),
  allow(
    ["ec2:RunInstances"],
    [
      `${P}:ec2:\${AWS::Region}::image/\${AmazonLinux2023Image}`,
      ec2("security-group/${NetworkWorkerSecurityGroup.GroupId}"),
    ],
    {
      ArnEquals: { "ec2:LaunchTemplate": LAUNCH_TEMPLATE },
      Bool: { "ec2:IsLaunchTemplateResource": "true" },
    },
  ),
  allow(["ec2:RunInstances"], [ec2("instance/*"), ec2("volume/*")], {
    ArnEquals: { "ec2:LaunchTemplate": LAUNCH_TEMPLATE },
    Bool: { "ec2:IsLaunchTemplateResource": "true" },
    StringEquals: { "aws:RequestTag/s3bl-fleet": "S3BucketLoader" },
  }),
  allow(
    ["ec2:RunInstances"],
    [
      ec2("network-interface/*"),
      ec2("spot-instances-request/*"),
      ec2("subnet/${NetworkVpcPublicSubnet1Subnet}"),
      ec2("subnet/${NetworkVpcPublicSubnet2Subnet}"),
    ],
    { ArnEquals: { "ec2:LaunchTemplate": LAUNCH_TEMPLATE } },
  ),
  allow(["ec2:CreateTags"], [ec2("instance/*"), ec2("volume/*")], {
    StringEquals: { "ec2:CreateAction": "RunInstances", "aws:RequestTag/s3bl-fleet": "S3BucketLoader" },
  }),
  allow(["ec2:TerminateInstances"], [ec2("instance/*")], {
    StringEquals: { "aws:ResourceTag/s3bl-fleet": "S3BucketLoader" },
  }),
  allow(["ec2:DescribeInstances"], ["*"]),
  allow(
    ["iam:CreateServiceLinkedRole"],
    [`${P}:iam::\${AWS::AccountId}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot`],
    { StringEquals: { "iam:AWSServiceName": "spot.amazonaws.com" } },
  ),
  allow(["iam:PassRole"], ["${WorkersRole.Arn}"]),
  allow(["s3:ListBucket"], ["${LogsBucket.Arn}"]),
  allow(["s3:GetObject"], ["${LogsBucket.Arn}/*"]),
  allow(["cloudformation:DescribeStacks"], [`${P}:cloudformation:${HERE}:stack/S3BucketLoader/*`]),
];

describe("the stack's grants, statement by statement", () => {
  it("gives the workers exactly their channels, the target prefix, their logs and the bundle's object", () => {
    const t = template({ targetPrefix: "loads/2024" });
    assert.deepEqual(
      sorted(statementsOf(t, "AWS::IAM::Policy", "WorkersRoleDefaultPolicy")),
      sorted(workerStatements("${TargetBucket.Arn}", "loads/2024")),
    );
    assert.deepEqual(managedPoliciesOf(t, "WorkersRole"), [SSM]);
  });

  it("lets the workers list the whole bucket only when the target is the whole bucket", () => {
    const t = template({ targetBucket: "my-data", createBucket: false });
    assert.deepEqual(
      sorted(statementsOf(t, "AWS::IAM::Policy", "WorkersRoleDefaultPolicy")),
      sorted(workerStatements(`${P}:s3:::my-data`, "")),
    );
  });

  it("adds only yas3fs's own topic and yas3fs-* queues when cache invalidation is configured", () => {
    const topic = "arn:aws:sns:us-east-1:123456789012:yas3fs";
    const yas3fsQueues = `${P}:sqs:${HERE}:yas3fs-*`;
    const t = template({ yas3fsTopicArn: topic });
    assert.deepEqual(
      sorted(statementsOf(t, "AWS::IAM::Policy", "WorkersRoleDefaultPolicy")),
      sorted([
        ...workerStatements("${TargetBucket.Arn}", ""),
        allow(["sns:Publish"], [topic]),
        allow(["sns:Subscribe"], [topic], {
          StringEquals: { "sns:Protocol": "sqs" },
          StringLike: { "sns:Endpoint": yas3fsQueues },
        }),
        allow(["sns:ConfirmSubscription", "sns:GetTopicAttributes", "sns:Unsubscribe"], [topic]),
        allow(
          [
            "sqs:CreateQueue",
            "sqs:DeleteMessage",
            "sqs:DeleteQueue",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
            "sqs:SetQueueAttributes",
          ],
          [yas3fsQueues],
        ),
      ]),
    );
  });

  it("adds GenerateDataKey and Decrypt on the target's KMS key, created or imported, and nothing else", () => {
    const arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    for (const [kmsKeyArn, resource] of [
      ["create", "${TargetKey.Arn}"],
      [arn, arn],
    ] as const) {
      const t = template({ kmsKeyArn });
      assert.deepEqual(
        sorted(statementsOf(t, "AWS::IAM::Policy", "WorkersRoleDefaultPolicy")),
        sorted([
          ...workerStatements("${TargetBucket.Arn}", ""),
          allow(["kms:Decrypt", "kms:GenerateDataKey"], [resource]),
        ]),
        kmsKeyArn,
      );
      assert.deepEqual(sorted(statementsOf(t, "AWS::IAM::ManagedPolicy", "MasterPolicy")), sorted(MASTER));
    }
  });

  it("gives the master's managed policy exactly its part: no send to and no purge of the report queue", () => {
    const statements = statementsOf(template(), "AWS::IAM::ManagedPolicy", "MasterPolicy");
    assert.deepEqual(sorted(statements), sorted(MASTER));
    const onReports = statements.filter((s) => s.resources.includes("${MessagingReportQueue.Arn}"));
    assert.deepEqual(onReports.flatMap((s) => s.actions).sort(), ["sqs:DeleteMessage", "sqs:ReceiveMessage"]);
  });

  it("lets the master delete under the target prefix only with allowDelete, and nothing else more", () => {
    const statements = statementsOf(
      template({ allowDelete: true, targetPrefix: "loads/2024" }),
      "AWS::IAM::ManagedPolicy",
      "MasterPolicy",
    );
    assert.deepEqual(
      sorted(statements),
      sorted([...MASTER, allow(["s3:DeleteObject"], ["${TargetBucket.Arn}/loads/2024/*"])]),
    );
  });

  it("gives the master host the master's policy, Session Manager, its runs and the CLI bundle's object only", () => {
    const t = template();
    assert.deepEqual(managedPoliciesOf(t, "MasterHostRole"), ["${MasterPolicy}", SSM]);
    assert.deepEqual(
      sorted(statementsOf(t, "AWS::IAM::Policy", "MasterHostRoleDefaultPolicy")),
      sorted([
        allow(["s3:GetObject"], [BUNDLE]),
        allow(["s3:AbortMultipartUpload", "s3:PutObject"], ["${LogsBucket.Arn}/runs/*"]),
      ]),
    );
  });

  it("has no other IAM policy than the worker role's, the master's and the master host's", () => {
    const t = template() as { Resources: Record<string, { Type: string }> };
    const policies = Object.entries(t.Resources)
      .filter(([, r]) => r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy")
      .map(([id]) => id.replace(/[0-9A-F]{8}$/, ""))
      .sort();
    assert.deepEqual(policies, ["MasterHostRoleDefaultPolicy", "MasterPolicy", "WorkersRoleDefaultPolicy"]);
  });

  it("has resource policies that only refuse plain HTTP (queues, topic, buckets)", () => {
    const t = template();
    for (const [type, prefix, count] of [
      ["AWS::SQS::QueuePolicy", "Messaging", 3],
      ["AWS::SNS::TopicPolicy", "Messaging", 1],
      ["AWS::S3::BucketPolicy", "", 2],
    ] as const) {
      const statements = statementsOf(t, type, prefix);
      assert.equal(statements.length, count, type);
      for (const s of statements) {
        assert.equal(s.effect, "Deny", `${type}: ${JSON.stringify(s)}`);
        assert.deepEqual(s.conditions, { Bool: { "aws:SecureTransport": "false" } });
        assert.ok(s.principal === "*" || JSON.stringify(s.principal) === '{"AWS":"*"}', type);
      }
    }
  });

  it("fails when a grant widens (the comparison is real)", () => {
    const stack = loaderStack();
    stack.messaging.reportQueue.grantSendMessages(stack.masterPolicy.policy);
    stack.fleet.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ["s3:PutObjectRetention"], resources: ["*"] }),
    );
    const t = Template.fromStack(stack).toJSON();
    assert.throws(() =>
      assert.deepEqual(sorted(statementsOf(t, "AWS::IAM::ManagedPolicy", "MasterPolicy")), sorted(MASTER)),
    );
    assert.throws(() =>
      assert.deepEqual(
        sorted(statementsOf(t, "AWS::IAM::Policy", "WorkersRoleDefaultPolicy")),
        sorted(workerStatements("${TargetBucket.Arn}", "")),
      ),
    );
  });
});

describe("the target bucket's encryption", () => {
  type Resources = Record<
    string,
    { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string }
  >;
  const resources = (settings: Partial<LoaderContext>) =>
    (template(settings) as { Resources: Resources }).Resources;
  const targetEncryption = (r: Resources) =>
    Object.entries(r).find(([id, x]) => x.Type === "AWS::S3::Bucket" && id.startsWith("TargetBucket"))?.[1]
      .Properties.BucketEncryption;

  it("stays on S3-managed keys without kmsKeyArn", () => {
    assert.deepEqual(targetEncryption(resources({})), {
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
    });
  });

  it("creates a rotated key kept with the data, and makes it the bucket's default with bucket keys", () => {
    const r = resources({ kmsKeyArn: "create" });
    const [id, key] =
      Object.entries(r).find(([k, x]) => x.Type === "AWS::KMS::Key" && k.startsWith("TargetKey")) ?? [];
    assert.ok(id && key, "a key for the target");
    assert.equal(key.Properties.EnableKeyRotation, true);
    assert.equal(key.DeletionPolicy, "Retain");
    assert.deepEqual(targetEncryption(r), {
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: {
            KMSMasterKeyID: { "Fn::GetAtt": [id, "Arn"] },
            SSEAlgorithm: "aws:kms",
          },
        },
      ],
    });
  });

  it("uses an imported key as the default of a created bucket, and creates no key", () => {
    const arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const r = resources({ kmsKeyArn: arn });
    assert.equal(
      Object.values(r).filter((x) => x.Type === "AWS::KMS::Key").length,
      1,
      "only the topic's key",
    );
    assert.deepEqual(targetEncryption(r), {
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: { KMSMasterKeyID: arn, SSEAlgorithm: "aws:kms" },
        },
      ],
    });
  });
});

describe("the control topic's encryption", () => {
  const t = template() as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };

  it("encrypts the topic with its own rotated KMS key, which goes with the stack", () => {
    const topics = Object.values(t.Resources).filter((r) => r.Type === "AWS::SNS::Topic");
    assert.equal(topics.length, 1);
    assert.deepEqual(topics[0]?.Properties.KmsMasterKeyId, {
      "Fn::GetAtt": [Object.keys(t.Resources).find((id) => id.startsWith("MessagingControlTopicKey")), "Arn"],
    });
    const keys = Object.entries(t.Resources).filter(([, r]) => r.Type === "AWS::KMS::Key");
    assert.equal(keys.length, 1);
    const [, key] = keys[0] as [string, { Properties: Record<string, unknown>; DeletionPolicy?: string }];
    assert.equal(key.Properties.EnableKeyRotation, true);
    assert.equal(key.Properties.PendingWindowInDays, 7);
    assert.equal(key.DeletionPolicy, "Delete");
  });

  it("leaves the key's use to IAM grants: its policy names only the account", () => {
    assert.deepEqual(statementsOf(t, "AWS::KMS::Key", "MessagingControlTopicKey"), [
      {
        effect: "Allow",
        actions: ["kms:*"],
        resources: ["*"],
        principal: { AWS: `${P}:iam::\${AWS::AccountId}:root` },
      },
    ]);
  });

  it("keeps the queues on SQS-managed keys, which SNS delivery and the SQS grants work with", () => {
    const queues = Object.values(t.Resources).filter((r) => r.Type === "AWS::SQS::Queue");
    assert.equal(queues.length, 3);
    for (const q of queues) {
      assert.equal(q.Properties.SqsManagedSseEnabled, true);
      assert.equal(q.Properties.KmsMasterKeyId, undefined);
    }
  });
});
