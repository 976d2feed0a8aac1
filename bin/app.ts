#!/usr/bin/env node
import { App } from "aws-cdk-lib";
import { parseLoaderContext } from "../lib/context.ts";
import { LoaderStack } from "../lib/loader-stack.ts";

const app = new App();
new LoaderStack(app, "S3BucketLoader", {
  description: "s3-bucket-loader: channels and workers of a bulk load into S3",
  settings: parseLoaderContext((key) => app.node.tryGetContext(key)),
  // An explicit account and region are needed only to look up an existing VPC (-c vpcId=…); without them the
  // stack is environment-agnostic and synthesizes offline, with no credentials.
  ...(app.node.tryGetContext("vpcId")
    ? { env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION } }
    : {}),
});
