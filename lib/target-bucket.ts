import { RemovalPolicy } from "aws-cdk-lib";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { acknowledge } from "./nag.ts";

export interface TargetBucketProps {
  /**
   * The bucket's name. With `create: false` the bucket must exist: it is imported and never changed or deleted.
   * @default a name chosen by CloudFormation (only with `create: true`)
   */
  readonly bucketName?: string | undefined;
  /** Create the bucket (kept when the stack is destroyed), or import an existing one. */
  readonly create: boolean;
}

/**
 * The bucket the load writes into. A created bucket has versioning off (a load writes each key once or
 * twice; versions would only cost), S3-managed encryption, no public access, TLS only, owner-enforced object
 * ownership, and is retained when the stack is destroyed: the loaded data outlives the loader.
 */
export class TargetBucket extends Construct {
  public readonly bucket: s3.IBucket;
  public readonly created: boolean;

  constructor(scope: Construct, id: string, props: TargetBucketProps) {
    super(scope, id);
    this.created = props.create;
    if (props.create) {
      this.bucket = new s3.Bucket(this, "Bucket", {
        ...(props.bucketName ? { bucketName: props.bucketName } : {}),
        versioned: false,
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforceSSL: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      acknowledge(
        this.bucket,
        "S1",
        "a load writes millions of objects: server access logs would add as many log objects; use CloudTrail data events if an audit is needed",
      );
    } else {
      if (!props.bucketName) throw new Error("TargetBucket: an imported bucket needs bucketName");
      this.bucket = s3.Bucket.fromBucketName(this, "Bucket", props.bucketName);
    }
  }
}
