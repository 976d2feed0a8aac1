#!/usr/bin/env node
import { App } from "aws-cdk-lib";
import { LoaderStack } from "../lib/loader-stack.ts";

const app = new App();
new LoaderStack(app, "S3BucketLoader", {
  description: "s3-bucket-loader: channels and workers of a bulk load into S3",
});
