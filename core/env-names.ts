/**
 * The names of the environment variables that configure the programs: the single seam between the
 * infrastructure (`lib/` writes them into the workers' user data) and the runtime (the config parsers read
 * them). Flags override them.
 */
export const ENV = {
  region: "AWS_REGION",
  endpointUrl: "AWS_ENDPOINT_URL",
  topicArn: "S3BL_TOPIC_ARN",
  tocQueueUrl: "S3BL_TOC_QUEUE_URL",
  reportQueueUrl: "S3BL_REPORT_QUEUE_URL",
  deadLetterQueueUrl: "S3BL_DEAD_LETTER_QUEUE_URL",
  source: "S3BL_SOURCE",
  target: "S3BL_TARGET",
  runId: "S3BL_RUN_ID",
  workerId: "S3BL_WORKER_ID",
  concurrency: "S3BL_CONCURRENCY",
  copier: "S3BL_COPIER",
  controlQueuePrefix: "S3BL_CONTROL_QUEUE_PREFIX",
  logFormat: "S3BL_LOG_FORMAT",
  /** A command the worker runs on entering VALIDATE, before it checks anything (e.g. remount yas3fs cold). */
  beforeValidateCmd: "S3BL_BEFORE_VALIDATE_CMD",
  /** A worker that hears no MODE from its master this long releases its batches and exits. */
  masterTimeoutSec: "S3BL_MASTER_TIMEOUT_SEC",
  /** yas3fs's own SNS topic: workers of an S3 target tell live mounts about new objects through it. */
  yas3fsTopicArn: "S3BL_YAS3FS_TOPIC_ARN",
  /** The worker watches the instance metadata service for a Spot interruption notice (the stack's workers do). */
  spotNotice: "S3BL_SPOT_NOTICE",
  /** Where that notice is asked for (EC2's own address unless a test points it at a stand-in). */
  imdsEndpoint: "S3BL_IMDS_ENDPOINT",
  stack: "S3BL_STACK",
  /** The SDK's own per-service endpoint variables, for a stand-in of one service (tests). */
  ec2EndpointUrl: "AWS_ENDPOINT_URL_EC2",
  cloudformationEndpointUrl: "AWS_ENDPOINT_URL_CLOUDFORMATION",
  /** The SDK's own key variables: `local` sets them for its workers when it runs its embedded emulator. */
  accessKeyId: "AWS_ACCESS_KEY_ID",
  secretAccessKey: "AWS_SECRET_ACCESS_KEY",
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
