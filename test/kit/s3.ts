/**
 * The S3 emulator the tests use: moto's server, started by
 * scripts/services/moto.sh (RUNNEL_TEST_S3, default http://127.0.0.1:15000),
 * and the Python of the same virtualenv, which has pyarrow for reading
 * Parquet independently of our own code.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
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

const created: string[] = [];

/** A fresh bucket with a unique name; `dropBuckets()` removes it with its objects and uploads. */
export async function freshBucket(client: S3Client, stem = "runnel-test"): Promise<string> {
  const bucket = `${stem}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  created.push(bucket);
  return bucket;
}

/** Deletes the buckets `freshBucket` made, so the emulator (which keeps everything in memory) stays small. */
export async function dropBuckets(client: S3Client): Promise<void> {
  for (const bucket of created.splice(0)) {
    for (const u of await listUploads(client, bucket)) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
    }
    const keys = await listKeys(client, bucket);
    for (let i = 0; i < keys.length; i += 1000) {
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: k.key })) } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  }
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
