/**
 * A Kinesis client set up from a table's options and the usual AWS
 * environment variables, and the error handling both directions share.
 */
import { KinesisClient } from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { KinesisOptions } from "./options.ts";

export function regionOf(o: KinesisOptions): string {
  return o.aws_region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
}

export function endpointOf(o: KinesisOptions): string | undefined {
  return o.aws_endpoint ?? process.env.AWS_ENDPOINT_URL_KINESIS ?? process.env.AWS_ENDPOINT_URL;
}

/** Where the stream lives, for error messages. */
export function whereOf(o: KinesisOptions): string {
  const endpoint = endpointOf(o);
  return `region '${regionOf(o)}'${endpoint ? ` at ${endpoint}` : ""}`;
}

export function createKinesisClient(o: KinesisOptions): KinesisClient {
  const endpoint = endpointOf(o);
  return new KinesisClient({
    region: regionOf(o),
    ...(endpoint ? { endpoint } : {}),
    ...(o.aws_access_key_id && o.aws_secret_access_key
      ? { credentials: { accessKeyId: o.aws_access_key_id, secretAccessKey: o.aws_secret_access_key, sessionToken: o.aws_session_token } }
      : {}),
    // The SDK's default handler under Bun is fetch-based and cannot talk to a
    // plain-http endpoint (an emulator); the Node handler can, and Bun runs it.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 }),
    // Retries are ours (they must respect the job's abort signal and limits).
    maxAttempts: 1,
  });
}

export function errorName(err: unknown): string {
  const e = err as { name?: string; code?: string };
  return e?.name ?? e?.code ?? "";
}

export function describeError(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string };
  const msg = e?.message ?? String(err);
  const name = e?.name && e.name !== "Error" && !msg.includes(e.name) ? `${e.name}: ` : "";
  return `${name}${msg}`;
}

export const isMissingStream = (err: unknown) => errorName(err) === "ResourceNotFoundException";

const TRANSIENT = new Set([
  "ProvisionedThroughputExceededException",
  "LimitExceededException",
  "ThrottlingException",
  "InternalFailure",
  "InternalFailureException",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "KMSThrottlingException",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ConnectionRefused",
]);

/** Errors worth retrying: throttling, 5xx, the network. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  if (!e) return false;
  if (TRANSIENT.has(e.name ?? "") || TRANSIENT.has(e.code ?? "")) return true;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  // Connection failures from the http handler carry no status.
  return status === undefined && /ECONNREFUSED|ECONNRESET|socket|timed? ?out|connect/i.test(describeError(err));
}

export function missingStreamError(o: KinesisOptions): Error {
  return new Error(
    `kinesis stream '${o.stream_name}' (option 'stream_name') does not exist in ${whereOf(o)}; create it first (Runnel does not create streams), or fix 'stream_name'/'aws_region'`,
  );
}
