/**
 * The Kinesis table options. Names follow Arroyo's (`stream_name`,
 * `aws_region`, `source.offset`, `sink.max_records_per_batch`,
 * `sink.max_bytes_per_batch`, `sink.flush_interval_millis`); the endpoint,
 * credentials and partition key column are Runnel's additions, named like the
 * filesystem connector's `storage.aws_*` options.
 */
import { opt } from "../../core/plugin-api/index.ts";

/** Kinesis's own limits on one PutRecords request. */
export const PUT_RECORDS_MAX_RECORDS = 500;
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;

export const kinesisOptions = {
  stream_name: opt.string({ required: true, description: "The Kinesis data stream to read or write" }),
  aws_region: opt.string({ description: "AWS region of the stream (else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1)" }),
  aws_endpoint: opt.string({
    description: "Kinesis endpoint URL, e.g. http://127.0.0.1:4567 for an emulator (else AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL, else AWS's)",
  }),
  aws_access_key_id: opt.string({ description: "Access key (else AWS_ACCESS_KEY_ID or the SDK's usual sources)" }),
  aws_secret_access_key: opt.string({ secret: true, description: "Secret key (else AWS_SECRET_ACCESS_KEY or the SDK's usual sources)" }),
  aws_session_token: opt.string({ secret: true, description: "Session token for temporary credentials (else AWS_SESSION_TOKEN)" }),
  "source.offset": opt.enum(["latest", "earliest"] as const, {
    default: "latest",
    description: "Where a job without state starts: new records only (latest), or everything the stream retains (earliest)",
  }),
  "sink.partition_key_field": opt.string({
    description: "Column whose value becomes each record's partition key (picks the shard; same key, same shard); a random key when unset or NULL",
  }),
  "sink.max_records_per_batch": opt.integer({
    default: PUT_RECORDS_MAX_RECORDS,
    min: 1,
    max: PUT_RECORDS_MAX_RECORDS,
    description: "Records per PutRecords request (Kinesis allows 500)",
  }),
  "sink.max_bytes_per_batch": opt.integer({
    default: 4_000_000,
    min: 1024 * 1024 + 256,
    max: PUT_RECORDS_MAX_BYTES,
    description: "Bytes (data plus partition keys) per PutRecords request (Kinesis allows 5 MiB)",
  }),
  "sink.flush_interval_millis": opt.integer({
    default: 100,
    min: 0,
    description: "Longest time a record waits in the buffer before it is sent; every record is also sent at each checkpoint",
  }),
};

/** The validated values (options with a default are always set). */
export interface KinesisOptions {
  stream_name: string;
  aws_region?: string;
  aws_endpoint?: string;
  aws_access_key_id?: string;
  aws_secret_access_key?: string;
  aws_session_token?: string;
  "source.offset": "latest" | "earliest";
  "sink.partition_key_field"?: string;
  "sink.max_records_per_batch": number;
  "sink.max_bytes_per_batch": number;
  "sink.flush_interval_millis": number;
}
