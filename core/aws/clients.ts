/**
 * SDK clients built once from the connection settings. With an endpoint (an emulator on loopback) every
 * client gets it explicitly: SQS queue URLs of emulators name hosts that do not resolve, so the SQS client
 * must not take its endpoint from the queue URL. Credentials always come from the SDK's default chain
 * (environment, profile, SSO, instance role), endpoint or not: an endpoint may check signatures and policies
 * (an emulator with IAM on, a VPC endpoint with a policy), and then only real keys get through.
 */
import http from "node:http";
import https from "node:https";
import { S3Client } from "@aws-sdk/client-s3";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import { S3Wire } from "./s3-wire.ts";

export interface AwsConnection {
  readonly region: string;
  /** An AWS-compatible endpoint (e.g. `http://127.0.0.1:4566`); unset for AWS itself. */
  readonly endpoint?: string | undefined;
  /** Sockets per client: enough for every concurrent request of the program. */
  readonly maxSockets: number;
  /**
   * Fixed keys, for an emulator this process started itself (the embedded one of `local`).
   * @default the SDK's default credential chain
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined;
}

export interface AwsClients {
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
  readonly s3: S3Client;
  /** Single PUTs and HEADs of the S3 client, signed by hand (see s3-wire.ts). */
  readonly s3Wire: S3Wire;
  destroy(): void;
}

/** How long a connection may take to open, and a socket may stay silent, before the call fails. */
export const CONNECT_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 30_000;
/** The longest an SQS or SNS call may take in all (a long poll waits at most 20 s). */
export const REQUEST_TIMEOUT_MS = 45_000;

export function makeClients(conn: AwsConnection): AwsClients {
  const agentOptions = { keepAlive: true, maxSockets: conn.maxSockets };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  // A half-open connection must not stall a program: connecting has 5 s; a socket silent for 30 s (longer
  // than the longest long poll, 20 s) fails the call, which the retry policy then retries.
  const handler = {
    httpAgent: agents.http,
    httpsAgent: agents.https,
    connectionTimeout: CONNECT_TIMEOUT_MS,
    socketTimeout: IDLE_TIMEOUT_MS,
  };
  // SQS and SNS calls are small: each has a bound on its whole time too. (S3 uploads of large parts may
  // take long on a slow link: only the idle bound applies to them.)
  const bounded = { ...handler, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true };
  const common = {
    region: conn.region,
    maxAttempts: 5,
    requestHandler: bounded,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    ...(conn.credentials ? { credentials: { ...conn.credentials } } : {}),
  };
  const sqs = new SQSClient({ ...common, ...(conn.endpoint ? { useQueueUrlAsEndpoint: false } : {}) });
  const sns = new SNSClient(common);
  const s3 = new S3Client({
    ...common,
    requestHandler: handler,
    // One attempt per call: our retry policy retries, so that the adaptive limit sees every SlowDown.
    maxAttempts: 1,
    // We send our own checksum with every upload; the SDK need not compute a second one.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...(conn.endpoint ? { forcePathStyle: true } : {}),
  });
  const s3Wire = new S3Wire(s3, {
    maxSockets: conn.maxSockets,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
  });
  return {
    sqs,
    sns,
    s3,
    s3Wire,
    destroy() {
      s3Wire.destroy();
      sqs.destroy();
      sns.destroy();
      s3.destroy();
    },
  };
}
