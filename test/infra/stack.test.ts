import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { LoaderStack } from "../../lib/loader-stack.ts";
import { Messaging } from "../../lib/messaging.ts";

describe("the load stack", () => {
  const template = Template.fromStack(new LoaderStack(new App(), "Test"));

  it("has a TOC queue whose batches go to a dead-letter queue after 5 deliveries", () => {
    template.hasResourceProperties("AWS::SQS::Queue", {
      VisibilityTimeout: 300,
      RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
      SqsManagedSseEnabled: true,
    });
    template.resourceCountIs("AWS::SQS::Queue", 3);
  });

  it("refuses plain HTTP on every queue and on the topic", () => {
    const denies = template.findResources("AWS::SQS::QueuePolicy", {
      Properties: {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
          ]),
        },
      },
    });
    assert.equal(Object.keys(denies).length, 3);
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("outputs every ARN and URL the master needs", () => {
    const outputs = Object.keys(template.findOutputs("*"));
    for (const name of ["ControlTopicArn", "TocQueueUrl", "DeadLetterQueueUrl", "ReportQueueUrl"]) {
      assert.ok(
        outputs.some((o) => o.includes(name)),
        `${name} in ${outputs.join(", ")}`,
      );
    }
  });

  it("fails early on a maxReceiveCount SQS would refuse", () => {
    const stack = new LoaderStack(new App(), "Bad");
    assert.throws(
      () => new Messaging(stack, "M2", { maxReceiveCount: 0 }),
      /maxReceiveCount must be an integer from 1 to 1000, got 0/,
    );
  });
});
