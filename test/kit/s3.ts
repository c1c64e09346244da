/**
 * The S3 emulator the tests use: moto's server, started by
 * scripts/services/moto.sh (RUNNEL_TEST_S3, default http://127.0.0.1:15000),
 * and the Python of the same virtualenv, which has pyarrow for reading
 * Parquet independently of our own code.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";

export const S3_ENDPOINT = process.env.RUNNEL_TEST_S3 ?? "http://127.0.0.1:15000";
/** moto accepts any key; these are the ones the tests pass in SQL. */
export const S3_KEY = "test-key";
export const S3_SECRET = "test-secret";

export const RUNNEL_VENV = process.env.RUNNEL_VENV ?? join(process.env.RUNNEL_CACHE ?? join(homedir(), ".cache", "runnel"), "venv");
export const PYTHON = join(RUNNEL_VENV, "bin", "python");

export function s3Client(): S3Client {
  return new S3Client({
    endpoint: S3_ENDPOINT,
    forcePathStyle: true,
    region: "us-east-1",
    credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_SECRET },
  });
}

/** A fresh bucket with a unique name. */
export async function freshBucket(client: S3Client, stem = "runnel-test"): Promise<string> {
  const bucket = `${stem}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

export async function listKeys(client: S3Client, bucket: string, prefix = ""): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

export async function listUploads(client: S3Client, bucket: string): Promise<{ key: string; uploadId: string }[]> {
  const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (r.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return await r.Body!.transformToByteArray();
}
