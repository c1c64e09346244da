/**
 * Where a table format keeps its metadata (a Delta log, Iceberg metadata
 * files): small whole objects under the table's location, with an atomic
 * put-if-absent for the entries whose name is the commit (a Delta version).
 * Locally that is a hard link of a fully written temporary file (link(2)
 * fails when the name exists); on S3 a conditional PutObject (If-None-Match: *),
 * which AWS S3 and moto enforce.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { LocalStorage, S3Storage, type Storage } from "../../connector-filesystem/storage.ts";

export interface TableStore {
  /** For messages: the table's location. */
  readonly describe: string;
  get(rel: string): Promise<Uint8Array | undefined>;
  /** Writes the object unless one of that name exists; false when it does (another writer got there first). */
  putIfAbsent(rel: string, data: Uint8Array): Promise<boolean>;
  /** Writes or replaces the object, atomically. */
  put(rel: string, data: Uint8Array): Promise<void>;
  /** Names (relative to `dir`) of the objects directly under `dir`. */
  list(dir: string): Promise<string[]>;
  /** Throws when the store does not honour put-if-absent (an S3-compatible store that ignores If-None-Match). */
  checkPutIfAbsent(dir: string): Promise<void>;
}

export function tableStoreFor(storage: Storage): TableStore {
  if (storage instanceof LocalStorage) return new LocalTableStore(storage.root);
  if (storage instanceof S3Storage) return new S3TableStore(storage.client, storage.settings.bucket, storage.settings.prefix);
  throw new Error(`table formats need a local or S3 location, not ${storage.describe}`);
}

let tmpSeq = 0;

export class LocalTableStore implements TableStore {
  constructor(readonly root: string) {}
  get describe(): string {
    return this.root;
  }
  async get(rel: string): Promise<Uint8Array | undefined> {
    try {
      return readFileSync(join(this.root, rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }
  private writeTemp(path: string, data: Uint8Array): string {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.tmp-${process.pid}-${Date.now()}-${tmpSeq++}`);
    const fd = openSync(tmp, "w", 0o644);
    try {
      let done = 0;
      while (done < data.length) done += writeSync(fd, data, done, data.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return tmp;
  }
  async putIfAbsent(rel: string, data: Uint8Array): Promise<boolean> {
    const path = join(this.root, rel);
    const tmp = this.writeTemp(path, data);
    try {
      linkSync(tmp, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
  async put(rel: string, data: Uint8Array): Promise<void> {
    const path = join(this.root, rel);
    renameSync(this.writeTemp(path, data), path);
  }
  async checkPutIfAbsent(): Promise<void> {
    // link(2) fails on an existing name on every local filesystem.
  }
  async list(dir: string): Promise<string[]> {
    try {
      return readdirSync(join(this.root, dir)).filter((n) => !n.startsWith(".tmp-"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }
}

export class S3TableStore implements TableStore {
  private readonly prefix: string;
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    prefix: string,
  ) {
    this.prefix = prefix.replace(/\/+$/, "");
  }
  get describe(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }
  private key(rel: string): string {
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }
  async get(rel: string): Promise<Uint8Array | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
      return await r.Body!.transformToByteArray();
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }
  async putIfAbsent(rel: string, data: Uint8Array): Promise<boolean> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(rel), Body: data, IfNoneMatch: "*" }));
      return true;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      // 409: a concurrent conditional write of the same key is in flight; it wins or fails, we retry after reading.
      if (e?.name === "PreconditionFailed" || e?.$metadata?.httpStatusCode === 412 || e?.$metadata?.httpStatusCode === 409) return false;
      throw err;
    }
  }
  async put(rel: string, data: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(rel), Body: data }));
  }
  async checkPutIfAbsent(dir: string): Promise<void> {
    const probe = `${dir}/.runnel-probe-${randomUUID()}`;
    try {
      const first = await this.putIfAbsent(probe, Buffer.from("1"));
      const second = await this.putIfAbsent(probe, Buffer.from("2"));
      if (first && second) {
        throw new Error(
          `the S3 endpoint of ${this.describe} accepted a second PutObject with If-None-Match: * on the same key, so it cannot make ` +
            `a commit only if no other writer made it first; two writers (or two subtasks) could overwrite each other's commit. ` +
            `Use AWS S3 or a store that honours conditional writes (MinIO 2024-11 or later)`,
        );
      }
    } finally {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(probe) })).catch(() => {});
    }
  }
  async list(dir: string): Promise<string[]> {
    const base = this.key(dir.replace(/\/+$/, "")) + "/";
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base, Delimiter: "/", ContinuationToken: token }));
      for (const o of r.Contents ?? []) out.push(o.Key!.slice(base.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
}
