import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { acknowledge } from "./nag.ts";

export interface LogsBucketProps {
  /**
   * How long logs are kept.
   * @default Duration.days(90)
   */
  readonly expiration?: Duration;
}

/**
 * Where the workers upload their logs at shutdown, under `logs/RUN_ID/INSTANCE_ID/`. Encrypted, private,
 * TLS only; objects expire; the bucket is retained when the stack is destroyed (it is seldom empty, and
 * CloudFormation cannot delete a bucket that is not).
 */
export class LogsBucket extends Construct {
  /** The key prefix the logs go under. */
  public static readonly PREFIX = "logs";
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: LogsBucketProps = {}) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ expiration: props.expiration ?? Duration.days(90) }],
    });
    acknowledge(
      this.bucket,
      "S1",
      "holds only the workers' own logs, written once at shutdown; access logs of it would be logs of logs",
    );
  }
}
