/**
 * S3 grants narrower than CDK's bucket grants, shared by the workers and the master host: `grantPut` also
 * allows Object Lock retention and legal-hold writes and version tagging, `Asset.grantRead` reads the whole
 * assets bucket.
 */
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type { Asset } from "aws-cdk-lib/aws-s3-assets";

/**
 * Writing objects under a key pattern (`PutObject`, which also covers multipart uploads, and aborting one):
 * unlike CDK's `grantPut`, no Object Lock retention or legal hold and no tagging of versions.
 */
export function grantObjectWrites(grantee: iam.IGrantable, bucket: s3.IBucket, keyPattern: string): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ["s3:PutObject", "s3:AbortMultipartUpload"],
    resourceArns: [bucket.arnForObjects(keyPattern)],
  });
}

/** Reading one asset's object (`aws s3 cp` of the bundle at boot): unlike `Asset.grantRead`, not the bucket. */
export function grantBundleRead(grantee: iam.IGrantable, asset: Asset): void {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ["s3:GetObject"],
    resourceArns: [asset.bucket.arnForObjects(asset.s3ObjectKey)],
  });
}

/**
 * Writing and reading objects encrypted with `key` (SSE-KMS): a PUT needs a data key (GenerateDataKey); a
 * multipart upload also needs Decrypt, as S3 decrypts that data key for each part and at completion; reading
 * (yas3fs, a link's text in VALIDATE) needs Decrypt. A HEAD needs neither.
 */
export function grantObjectEncryption(grantee: iam.IGrantable, key: kms.IKey): void {
  key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt");
}
