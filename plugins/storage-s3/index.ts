/**
 * Checkpoints on S3 or an S3-compatible store: `--state-dir s3://bucket/prefix`
 * or RUNNEL_CHECKPOINT_URL=s3://bucket/prefix. Credentials and region come
 * from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_REGION, profiles...); AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points at
 * an emulator or another S3-compatible service (path-style addressing).
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { definePlugin, defineStorage, type ObjectStorage } from "../../core/plugin-api/index.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";

requirePackages("storage-s3", import.meta.url, ["@aws-sdk/client-s3"]);

type S3Sdk = typeof import("@aws-sdk/client-s3");

function parse(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
  if (!m || !m[1]) throw new Error(`'${url}' is not an s3:// URL; write s3://bucket/prefix`);
  return { bucket: m[1], prefix: m[2]!.replace(/\/+$/, "") };
}

function explain(err: any, bucket: string, url: string): Error {
  const name = err?.name ?? err?.Code;
  const status = err?.$metadata?.httpStatusCode;
  if (name === "NoSuchBucket" || status === 404) return new Error(`checkpoint storage ${url}: bucket '${bucket}' does not exist; create it, or point the state directory elsewhere`);
  if (name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch" || status === 403) {
    return new Error(`checkpoint storage ${url}: access denied to bucket '${bucket}'; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy`);
  }
  if (name === "CredentialsProviderError") return new Error(`checkpoint storage ${url}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  return new Error(`checkpoint storage ${url}: ${err?.message ?? String(err)}`);
}

class S3ObjectStorage implements ObjectStorage {
  /** The AWS SDK and a client, loaded by the first call (`create` is synchronous; the calls are not). */
  private connection?: Promise<{ sdk: S3Sdk; client: S3Client }>;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(private readonly url: string) {
    ({ bucket: this.bucket, prefix: this.prefix } = parse(url));
  }

  private s3(): Promise<{ sdk: S3Sdk; client: S3Client }> {
    return (this.connection ??= importFor("storage-s3", () => import("@aws-sdk/client-s3")).then((sdk) => {
      const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
      const client = new sdk.S3Client({
        region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
        ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      });
      return { sdk, client };
    }));
  }

  private key(k: string): string {
    return this.prefix ? `${this.prefix}/${k}` : k;
  }

  private async call<T>(work: (sdk: S3Sdk, client: S3Client) => Promise<T>): Promise<T> {
    const { sdk, client } = await this.s3();
    try {
      return await work(sdk, client);
    } catch (err) {
      throw explain(err, this.bucket, this.url);
    }
  }

  async check(): Promise<void> {
    await this.call((sdk, client) => client.send(new sdk.HeadBucketCommand({ Bucket: this.bucket })));
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.call((sdk, client) => client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: data })));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { sdk, client } = await this.s3();
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return await res.Body!.transformToByteArray();
    } catch (err: any) {
      if (err?.name === "NoSuchKey") return undefined;
      throw explain(err, this.bucket, this.url);
    }
  }

  async getRange(key: string, start: number, length: number): Promise<Uint8Array> {
    const range = start < 0 ? `bytes=${start}` : `bytes=${start}-${start + length - 1}`;
    const res = await this.call((sdk, client) => client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(key), Range: range })));
    return await res.Body!.transformToByteArray();
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    const full = this.key(prefix);
    do {
      const res = await this.call((sdk, client) => client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ContinuationToken: token })));
      for (const o of res.Contents ?? []) if (o.Key) keys.push(this.prefix ? o.Key.slice(this.prefix.length + 1) : o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async delete(key: string): Promise<void> {
    await this.call((sdk, client) => client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) })));
  }
}

export default definePlugin({
  name: "runnel-storage-s3",
  storages: [
    defineStorage({
      scheme: "s3",
      description: "Checkpoints in S3 or an S3-compatible store (AWS environment settings; AWS_ENDPOINT_URL_S3 for emulators)",
      create: (url) => new S3ObjectStorage(url),
    }),
  ],
});
