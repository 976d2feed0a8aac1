/**
 * The seam between the deployed stack and the master: the names of the stack's outputs (`lib/` writes them,
 * the master reads them through CloudFormation or the file `cdk deploy --outputs-file` writes) and the tags of
 * the instances the master launches (the stack's IAM conditions and the workers' boot script rely on them).
 */
export const STACK_OUTPUTS = {
  region: "Region",
  topicArn: "ControlTopicArn",
  tocQueueUrl: "TocQueueUrl",
  deadLetterQueueUrl: "DeadLetterQueueUrl",
  reportQueueUrl: "ReportQueueUrl",
  targetBucket: "TargetBucketName",
  logsBucket: "LogsBucketName",
  launchTemplateId: "WorkerLaunchTemplateId",
  subnetIds: "WorkerSubnetIds",
  securityGroupId: "WorkerSecurityGroupId",
  workerRoleArn: "WorkerRoleArn",
  masterPolicyArn: "MasterPolicyArn",
  fleetName: "FleetName",
  masterLaunchTemplateId: "MasterLaunchTemplateId",
} as const;

export type StackOutputName = (typeof STACK_OUTPUTS)[keyof typeof STACK_OUTPUTS];

/** Tags on every instance the master launches. Only instances tagged with the stack's fleet name can be terminated. */
export const FLEET_TAGS = {
  /** The stack's fleet name (its stack name). */
  fleet: "s3bl-fleet",
  /** The run the instance works for; the boot script reads it through instance metadata. */
  runId: "s3bl-run-id",
} as const;

/**
 * The shape of a run id, as a regular expression that means the same in JavaScript and in POSIX ERE (bash's
 * `[[ =~ ]]` in the C locale): the master accepts only such ids, and the boot scripts refuse a run tag of any
 * other shape before writing it anywhere.
 */
export const RUN_ID_SHAPE = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";

/**
 * Tags of the master host, read by its boot script through instance metadata: the run id, and the master's
 * further arguments (`--workers 20 --spot`, split on spaces).
 */
export const MASTER_TAGS = {
  runId: "s3bl-run-id",
  args: "s3bl-master-args",
} as const;
