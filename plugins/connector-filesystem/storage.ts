/**
 * Where the filesystem connector keeps bytes: a local directory or an S3
 * prefix. The sink writes through it (a staging file then an atomic rename
 * locally; one multipart upload per file on S3, completed at commit); both
 * keep a file's progress in a small JSON state so a restarted process can
 * finish it, and both detect a finish that already happened. The source lists
 * and reads through it (streams from an offset, ranges for Parquet's footer).
 */
import {
  closeSync,
  copyFileSync,
  createReadStream,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { crashPoint, type FileAccess } from "../../core/plugin-api/index.ts";
import { allowedDir, type Options } from "./index.ts";
import { parseLocation } from "./paths.ts";

/** Progress of a file being written, as a checkpoint keeps it. */
export type TargetState =
  | { kind: "local"; final: string; staging: string; length: number }
  | { kind: "s3"; key: string; uploadId: string; parts: { n: number; etag: string }[]; tail: string };

/** A file whose bytes are all written, waiting for the checkpoint's commit to become visible. */
export type ReadyFile = (
  | { kind: "local"; final: string; staging: string }
  | { kind: "s3"; key: string; uploadId: string; parts: { n: number; etag: string }[] }
) & {
  /** What a table format's log says of the file (see FileCommitLog). */
  meta?: unknown;
};

export interface FileTarget {
  /** Bytes written so far (uploaded or buffered). */
  readonly size: number;
  append(bytes: Uint8Array): Promise<void> | void;
  /** Makes everything written durable or uploaded where possible and describes the rest. */
  checkpoint(): TargetState;
  /** Writes the last bytes; the file becomes visible at `complete`. */
  finish(last: Uint8Array): Promise<ReadyFile> | ReadyFile;
  /** Set once a completed checkpoint holds the file open: a restore from then on finishes it (crash tests aim here). */
  recoverable?: boolean;
}

/** A file the source can read, by its path relative to the root ('/'-separated). */
export interface StoredFile {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Hidden files are not data: our sink's `.x.inprogress` staging files, `_SUCCESS` markers, editors' temp files. */
export const isHidden = (name: string) => name.startsWith(".") || name.startsWith("_");

export interface Storage {
  readonly describe: string;
  /** Every visible file under the root (none under hidden directories), in no particular order. */
  list(): Promise<StoredFile[]>;
  /** The file's bytes from `offset` to its end, as a stream. */
  openRead(path: string, offset: number): Promise<Readable>;
  /** Bytes [start, start + length) of the file. */
  readRange(path: string, start: number, length: number): Promise<Buffer>;
  /** Checks the location is usable (directory writable, bucket reachable); throws an error naming the option. */
  check(): Promise<void>;
  open(relPath: string): Promise<FileTarget>;
  /** Finishes a file from a checkpoint's state; null when it was already completed. */
  finishFrom(state: TargetState, last: Uint8Array): Promise<ReadyFile | null>;
  /** Makes the file visible; idempotent. */
  complete(file: ReadyFile): Promise<void>;
  /** Removes staging files / aborts uploads of ours that no checkpoint knows. */
  cleanup(known: Set<string>, owned: (fileName: string) => boolean): Promise<number>;
  /** The path of a file under the sink's location. */
  relative(state: TargetState): string;
}

/** The finished file a target's state describes (`complete` of it is a no-op once it is visible). */
export function readyFrom(s: TargetState): ReadyFile {
  return s.kind === "local" ? { kind: "local", final: s.final, staging: s.staging } : { kind: "s3", key: s.key, uploadId: s.uploadId, parts: s.parts };
}

/** What `cleanup` matches against: the staging path (local) or the upload id (S3). */
export function stateId(s: TargetState | ReadyFile): string {
  return s.kind === "local" ? s.staging : s.uploadId;
}

export type FileSystemSinkErrorCode =
  | "PATH_NOT_WRITABLE"
  | "PATH_NOT_READABLE"
  | "BUCKET_NOT_FOUND"
  | "CREDENTIALS"
  | "ENDPOINT_UNREACHABLE"
  | "S3_REQUEST"
  | "STATE_MISMATCH";

export class FileSystemSinkError extends Error {
  constructor(
    readonly code: FileSystemSinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "FileSystemSinkError";
  }
}

// ------------------------------------------------------------------ local

function stagingOf(final: string): string {
  return join(dirname(final), `.${basename(final)}.inprogress`);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse to fsync a directory; the rename is still atomic.
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number | null): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, bytes.length - done, position === null ? null : position + done);
  }
}

class LocalTarget implements FileTarget {
  size = 0;
  private fd: number;
  constructor(
    readonly final: string,
    readonly staging: string,
  ) {
    this.fd = openSync(staging, "w", 0o644);
  }
  append(bytes: Uint8Array): void {
    writeAll(this.fd, bytes, null);
    this.size += bytes.length;
  }
  checkpoint(): TargetState {
    fsyncSync(this.fd);
    return { kind: "local", final: this.final, staging: this.staging, length: this.size };
  }
  finish(last: Uint8Array): ReadyFile {
    if (last.length) this.append(last);
    fsyncSync(this.fd);
    closeSync(this.fd);
    return { kind: "local", final: this.final, staging: this.staging };
  }
}

export class LocalStorage implements Storage {
  constructor(
    /** The base directory. */
    readonly root: string,
    /** Who speaks in errors: "filesystem sink" or "filesystem source". */
    private readonly who = "filesystem sink",
  ) {}

  async list(): Promise<StoredFile[]> {
    const out: StoredFile[] = [];
    const walk = (dir: string) => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (err) {
        if (dir === this.root) throw this.readError(dir, err);
        return; // removed while listing
      }
      for (const e of entries) {
        if (isHidden(e.name)) continue;
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() || e.isSymbolicLink()) {
          try {
            const st = statSync(p);
            if (st.isFile()) out.push({ path: relative(this.root, p).split(sep).join("/"), size: st.size, mtimeMs: st.mtimeMs });
          } catch {
            // removed while listing
          }
        }
      }
    };
    walk(this.root);
    return out;
  }

  private readError(path: string, err: unknown): FileSystemSinkError {
    const e = err as NodeJS.ErrnoException;
    const what = e?.code === "ENOENT" ? "does not exist" : e?.code === "ENOTDIR" ? "is not a directory" : `cannot be read (${e?.message ?? String(err)})`;
    return new FileSystemSinkError("PATH_NOT_READABLE", `${this.who}: '${path}' (option 'path') ${what}`);
  }

  async openRead(path: string, offset: number): Promise<Readable> {
    const full = join(this.root, path);
    // Opened here so a missing file fails this call, not the first read.
    return await new Promise<Readable>((resolve, reject) => {
      const stream = createReadStream(full, { start: offset, highWaterMark: 1 << 20 });
      stream.once("open", () => resolve(stream));
      stream.once("error", (err) => reject(this.readError(full, err)));
    });
  }

  async readRange(path: string, start: number, length: number): Promise<Buffer> {
    const full = join(this.root, path);
    let fd: number;
    try {
      fd = openSync(full, "r");
    } catch (err) {
      throw this.readError(full, err);
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buf, done, length - done, start + done);
        if (n === 0) break;
        done += n;
      }
      return done === length ? buf : buf.subarray(0, done);
    } finally {
      closeSync(fd);
    }
  }

  get describe(): string {
    return this.root;
  }

  async check(): Promise<void> {
    try {
      mkdirSync(this.root, { recursive: true });
      const probe = join(this.root, `.runnel-probe-${process.pid}-${Date.now()}`);
      closeSync(openSync(probe, "w"));
      unlinkSync(probe);
    } catch (err) {
      throw new FileSystemSinkError(
        "PATH_NOT_WRITABLE",
        `filesystem sink: cannot write to '${this.root}' (option 'path'): ${(err as Error).message}. ` +
          `Point 'path' at a directory this process can create and write.`,
      );
    }
  }

  async open(relPath: string): Promise<FileTarget> {
    const final = join(this.root, relPath);
    try {
      mkdirSync(dirname(final), { recursive: true });
      return new LocalTarget(final, stagingOf(final));
    } catch (err) {
      throw new FileSystemSinkError("PATH_NOT_WRITABLE", `filesystem sink: cannot create '${final}' (option 'path'): ${(err as Error).message}`);
    }
  }

  relative(state: TargetState): string {
    return state.kind === "local" ? relative(this.root, state.final) : state.key;
  }

  async finishFrom(state: TargetState, last: Uint8Array): Promise<ReadyFile | null> {
    if (state.kind !== "local") throw new FileSystemSinkError("STATE_MISMATCH", `filesystem sink: the checkpoint holds an S3 file but 'path' is now local`);
    if (!existsSync(state.staging)) {
      if (existsSync(state.final)) return null; // finished and renamed before
      throw new FileSystemSinkError(
        "STATE_MISMATCH",
        `filesystem sink: staging file '${state.staging}' of a checkpointed file is gone and '${state.final}' does not exist; ` +
          `it was removed outside Runnel. Restore it, or start the job without its saved state.`,
      );
    }
    // Finished in a copy, not in place: a superseded run that still holds the staging file open (paused,
    // then woken) must write into a file nobody will publish, not into the one this run commits.
    const copy = `${state.staging}.${process.pid}.restoring`;
    copyFileSync(state.staging, copy);
    const fd = openSync(copy, "r+");
    try {
      ftruncateSync(fd, state.length);
      writeAll(fd, last, state.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(copy, state.staging);
    return { kind: "local", final: state.final, staging: state.staging };
  }

  async complete(file: ReadyFile): Promise<void> {
    if (file.kind !== "local") throw new FileSystemSinkError("STATE_MISMATCH", `filesystem sink: the checkpoint holds an S3 file but 'path' is now local`);
    if (existsSync(file.staging)) {
      renameSync(file.staging, file.final);
      fsyncDir(dirname(file.final));
    } else if (!existsSync(file.final)) {
      throw new FileSystemSinkError(
        "STATE_MISMATCH",
        `filesystem sink: neither '${file.staging}' nor '${file.final}' exists; the file was removed outside Runnel`,
      );
    }
  }

  async cleanup(known: Set<string>, owned: (fileName: string) => boolean): Promise<number> {
    let removed = 0;
    const walk = (dir: string) => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.startsWith(".") && e.name.endsWith(".restoring") && owned(e.name.slice(1).replace(/\.inprogress\.\d+\.restoring$/, ""))) {
          // A copy a restore was finishing when it crashed.
          unlinkSync(p);
        } else if (e.name.startsWith(".") && e.name.endsWith(".inprogress") && !known.has(p)) {
          if (owned(e.name.slice(1, -".inprogress".length))) {
            unlinkSync(p);
            removed++;
          }
        }
      }
    };
    walk(this.root);
    return removed;
  }
}

// ------------------------------------------------------------------ S3

export interface S3Settings {
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  partSize: number;
  /** Who speaks in errors: "filesystem sink" (default) or "filesystem source". */
  who?: string;
}

/** Says which option or variable to fix for an S3 error. */
function s3Error(err: unknown, what: string, s: S3Settings): FileSystemSinkError {
  const e = err as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const who = s.who ?? "filesystem sink";
  const code = e?.name ?? e?.Code ?? "";
  const status = e?.$metadata?.httpStatusCode;
  const creds = s.accessKeyId
    ? "options 'storage.aws_access_key_id' and 'storage.aws_secret_access_key'"
    : "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or options 'storage.aws_access_key_id' and 'storage.aws_secret_access_key')";
  if (code === "NoSuchBucket" || (code === "NotFound" && what.startsWith("check"))) {
    return new FileSystemSinkError(
      "BUCKET_NOT_FOUND",
      `${who}: bucket '${s.bucket}' (option 'path') does not exist at ${s.endpoint ?? "AWS"}; create it or fix 'path'`,
    );
  }
  if (code === "CredentialsProviderError" || /Could not load credentials/i.test(e?.message ?? "")) {
    return new FileSystemSinkError(
      "CREDENTIALS",
      `${who}: no AWS credentials for bucket '${s.bucket}'; give options 'storage.aws_access_key_id' and 'storage.aws_secret_access_key', or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    );
  }
  if (
    code === "InvalidAccessKeyId" ||
    code === "SignatureDoesNotMatch" ||
    code === "InvalidClientTokenId" ||
    code === "Forbidden" ||
    code === "AccessDenied" ||
    status === 403
  ) {
    return new FileSystemSinkError(
      "CREDENTIALS",
      `${who}: S3 refused the credentials for bucket '${s.bucket}' (${code || status}); check ${creds}`,
    );
  }
  if (/ECONNREFUSED|ENOTFOUND|getaddrinfo|connect/i.test(e?.message ?? "")) {
    return new FileSystemSinkError(
      "ENDPOINT_UNREACHABLE",
      `${who}: cannot reach S3 at ${s.endpoint ?? "AWS"} (option 'storage.aws_endpoint'): ${e?.message}`,
    );
  }
  return new FileSystemSinkError("S3_REQUEST", `${who}: S3 ${what} failed for s3://${s.bucket}/${s.prefix}: ${code} ${e?.message ?? String(err)}`);
}

class S3Target implements FileTarget {
  size = 0;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  readonly parts: { n: number; etag: string }[] = [];
  recoverable = false;
  constructor(
    private readonly store: S3Storage,
    readonly key: string,
    readonly uploadId: string,
  ) {}

  async append(bytes: Uint8Array): Promise<void> {
    this.chunks.push(bytes);
    this.buffered += bytes.length;
    this.size += bytes.length;
    if (this.buffered >= this.store.settings.partSize) await this.uploadBuffered();
  }

  private takeBuffered(): Buffer {
    const data = this.chunks.length === 1 ? Buffer.from(this.chunks[0]!) : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return data;
  }

  private async uploadBuffered(): Promise<void> {
    const n = this.parts.length + 1;
    const etag = await this.store.uploadPart(this.key, this.uploadId, n, this.takeBuffered());
    this.parts.push({ n, etag });
    crashPoint("filesystem-after-part-upload");
    if (this.recoverable) crashPoint("filesystem-after-part-upload-of-recoverable-file");
  }

  checkpoint(): TargetState {
    // Full parts went up as they filled; what is left is smaller than a part and travels in the checkpoint.
    const tail = this.chunks.length ? Buffer.concat(this.chunks) : Buffer.alloc(0);
    this.chunks = tail.length ? [tail] : [];
    return { kind: "s3", key: this.key, uploadId: this.uploadId, parts: [...this.parts], tail: tail.toString("base64") };
  }

  async finish(last: Uint8Array): Promise<ReadyFile> {
    if (last.length) {
      this.chunks.push(last);
      this.buffered += last.length;
      this.size += last.length;
    }
    if (this.buffered > 0 || this.parts.length === 0) await this.uploadBuffered();
    return { kind: "s3", key: this.key, uploadId: this.uploadId, parts: [...this.parts] };
  }
}

export class S3Storage implements Storage {
  readonly client: S3Client;
  constructor(readonly settings: S3Settings) {
    const s = settings;
    const endpoint = s.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    this.client = new S3Client({
      region: s.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1",
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(s.accessKeyId && s.secretAccessKey
        ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } }
        : {}),
      maxAttempts: 3,
    });
  }

  get describe(): string {
    return `s3://${this.settings.bucket}/${this.settings.prefix}`;
  }

  async list(): Promise<StoredFile[]> {
    const out: StoredFile[] = [];
    const prefix = this.settings.prefix ? this.settings.prefix.replace(/\/+$/, "") + "/" : "";
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: prefix, ContinuationToken: token }));
      } catch (err) {
        throw s3Error(err, "ListObjectsV2", this.settings);
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key || o.Key.endsWith("/")) continue;
        const path = o.Key.slice(prefix.length);
        if (path.split("/").some(isHidden)) continue;
        out.push({ path, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async get(path: string, range: string | undefined): Promise<Readable> {
    const key = this.keyOf(path);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: key, Range: range }));
      return r.Body as Readable;
    } catch (err) {
      throw s3Error(err, `GetObject ${key}`, this.settings);
    }
  }

  async openRead(path: string, offset: number): Promise<Readable> {
    return await this.get(path, offset > 0 ? `bytes=${offset}-` : undefined);
  }

  async readRange(path: string, start: number, length: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    const body = await this.get(path, `bytes=${start}-${start + length - 1}`);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private keyOf(relPath: string): string {
    return this.settings.prefix ? `${this.settings.prefix.replace(/\/+$/, "")}/${relPath}` : relPath;
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.settings.bucket }));
    } catch (err) {
      throw s3Error(err, "check of the bucket", this.settings);
    }
  }

  async open(relPath: string): Promise<FileTarget> {
    const key = this.keyOf(relPath);
    try {
      const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.settings.bucket, Key: key }));
      return new S3Target(this, key, r.UploadId!);
    } catch (err) {
      throw s3Error(err, "CreateMultipartUpload", this.settings);
    }
  }

  async uploadPart(key: string, uploadId: string, n: number, body: Buffer): Promise<string> {
    try {
      const r = await this.client.send(
        new UploadPartCommand({ Bucket: this.settings.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body }),
      );
      return r.ETag!;
    } catch (err) {
      throw s3Error(err, `UploadPart ${n} of ${key}`, this.settings);
    }
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      return true;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404) return false;
      throw s3Error(err, `HeadObject ${key}`, this.settings);
    }
  }

  relative(state: TargetState): string {
    const key = state.kind === "s3" ? state.key : state.final;
    const prefix = this.settings.prefix.replace(/\/+$/, "");
    return prefix && key.startsWith(prefix + "/") ? key.slice(prefix.length + 1) : key;
  }

  async finishFrom(state: TargetState, last: Uint8Array): Promise<ReadyFile | null> {
    if (state.kind !== "s3") throw new FileSystemSinkError("STATE_MISMATCH", `filesystem sink: the checkpoint holds a local file but 'path' is now on S3`);
    if (await this.exists(state.key)) return null; // completed by an earlier recovery
    const tail = Buffer.from(state.tail, "base64");
    // Nothing left to add (JSON lines whose bytes all went up in full parts): complete with those.
    if (tail.length === 0 && last.length === 0 && state.parts.length > 0) {
      return { kind: "s3", key: state.key, uploadId: state.uploadId, parts: [...state.parts] };
    }
    const n = state.parts.length + 1;
    // Parts uploaded after the checkpoint (numbers ≥ n) are overwritten or left out of the completion.
    const etag = await this.uploadPart(state.key, state.uploadId, n, Buffer.concat([tail, last]));
    return { kind: "s3", key: state.key, uploadId: state.uploadId, parts: [...state.parts, { n, etag }] };
  }

  async complete(file: ReadyFile): Promise<void> {
    if (file.kind !== "s3") throw new FileSystemSinkError("STATE_MISMATCH", `filesystem sink: the checkpoint holds a local file but 'path' is now on S3`);
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.settings.bucket,
          Key: file.key,
          UploadId: file.uploadId,
          MultipartUpload: { Parts: file.parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      const e = err as { name?: string; Code?: string };
      if ((e?.name === "NoSuchUpload" || e?.Code === "NoSuchUpload") && (await this.exists(file.key))) return; // completed before
      throw s3Error(err, `CompleteMultipartUpload of ${file.key}`, this.settings);
    }
  }

  async cleanup(known: Set<string>, owned: (fileName: string) => boolean): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    const prefix = this.settings.prefix ? this.settings.prefix.replace(/\/+$/, "") + "/" : "";
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.settings.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
      } catch (err) {
        throw s3Error(err, "ListMultipartUploads", this.settings);
      }
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || known.has(u.UploadId)) continue;
        if (!owned(basename(u.Key))) continue;
        try {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: u.Key, UploadId: u.UploadId }));
          aborted++;
        } catch (err) {
          const e = err as { name?: string };
          if (e?.name !== "NoSuchUpload") throw s3Error(err, `AbortMultipartUpload of ${u.Key}`, this.settings);
        }
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
    return aborted;
  }
}

/** Where a filesystem table (or a table format built on it) keeps its files, from its options. */
export function storageFor(o: Options, files: FileAccess | undefined, who = "filesystem sink", path = o.path): Storage {
  const loc = parseLocation(path);
  if (loc.kind === "local") return new LocalStorage(allowedDir(files, loc.dir), who);
  return new S3Storage({
    who,
    bucket: loc.bucket,
    prefix: loc.prefix,
    region: o["storage.aws_region"] ?? loc.region,
    endpoint: o["storage.aws_endpoint"] ?? loc.endpoint,
    accessKeyId: o["storage.aws_access_key_id"],
    secretAccessKey: o["storage.aws_secret_access_key"],
    partSize: o["multipart.target_part_size"],
  });
}
