import { RemovalPolicy } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
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
  /**
   * SSE-KMS: `create` for a new key (rotated, kept when the stack is destroyed: the objects need it), or an
   * existing key's ARN. A created bucket encrypts with it by default, with bucket keys; an imported bucket
   * keeps its own default, and the key is what the workers are granted and `--sse-kms-key-id` names.
   * @default S3-managed keys, no KMS
   */
  readonly kmsKey?: "create" | string | undefined;
}

/**
 * The bucket the load writes into. A created bucket has versioning off (a load writes each key once or
 * twice; versions would only cost), S3-managed encryption or the load's KMS key, no public access, TLS only, owner-enforced object
 * ownership, and is retained when the stack is destroyed: the loaded data outlives the loader.
 */
export class TargetBucket extends Construct {
  public readonly bucket: s3.IBucket;
  public readonly created: boolean;
  /** The objects' KMS key, when the load encrypts with SSE-KMS. */
  public readonly encryptionKey: kms.IKey | undefined;

  constructor(scope: Construct, id: string, props: TargetBucketProps) {
    super(scope, id);
    this.created = props.create;
    this.encryptionKey =
      props.kmsKey === undefined
        ? undefined
        : props.kmsKey === "create"
          ? new kms.Key(this, "Key", {
              description: "s3-bucket-loader: the target bucket's objects",
              enableKeyRotation: true,
              removalPolicy: RemovalPolicy.RETAIN,
            })
          : kms.Key.fromKeyArn(this, "Key", props.kmsKey);
    if (props.create) {
      this.bucket = new s3.Bucket(this, "Bucket", {
        ...(props.bucketName ? { bucketName: props.bucketName } : {}),
        versioned: false,
        ...(this.encryptionKey
          ? {
              encryption: s3.BucketEncryption.KMS,
              encryptionKey: this.encryptionKey,
              bucketKeyEnabled: true,
            }
          : { encryption: s3.BucketEncryption.S3_MANAGED }),
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
