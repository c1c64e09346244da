/**
 * Durable checkpoints under the state directory: one file per completed
 * checkpoint, written to a temporary name, fsynced and renamed, so a crash at
 * any moment leaves either the old or the new checkpoint — never half of one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";

export const CHECKPOINT_FORMAT = "runnel-checkpoint";
export const CHECKPOINT_VERSION = 2;

export interface CheckpointData {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Fingerprint of the planned pipeline; a state dir belongs to one pipeline. */
  pipeline: string;
  /** Operator state id (core/dataflow/fingerprint.ts) → label, for messages about the operators holding state. */
  labels: Record<string, string>;
  checkpointId: number;
  /** The run that wrote it (core/checkpoint/fence.ts); 0 in manifests written before runs had epochs. */
  epoch?: number;
  createdAt: number;
  /** What followed the barrier: a final checkpoint says whether the job ended or was stopped. */
  then: "continue" | "end" | "stop";
  /** Key groups the keyed state is partitioned into (fixed for the life of the job's state). */
  maxParallelism: number;
  /** Operator state id → subtask index → its values and state files. */
  operators: Record<string, Record<string, SubtaskCheckpoint>>;
}

/** One operator subtask's part of a checkpoint. */
export interface SubtaskCheckpoint {
  /** Small values (union and list state), inline. */
  values: Record<string, unknown>;
  /** Per keyed table: the key groups the subtask owned and the files holding them, oldest first. */
  tables: Record<string, { range: [number, number]; files: StateFileRef[] }>;
  /** The operator had finished (all its inputs ended): its tables were left out, a restore starts it empty. */
  finished?: true;
}

export class CheckpointStoreError extends Error {}

import type { StateFileRef } from "../state/operator-state.ts";
import { readFence, superseded, type FenceRecord } from "./fence.ts";

const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** The URL scheme of a state location (`s3` for `s3://…`), or null for a local path (`file://` is local). */
export function storageScheme(location: string): string | null {
  const scheme = URL_SCHEME.exec(location)?.[1]?.toLowerCase();
  return scheme && scheme !== "file" ? scheme : null;
}

/** A local path made absolute (`file://` dropped); a URL kept as written, without a trailing slash. */
export function normalizeStateLocation(location: string): string {
  return storageScheme(location) ? location.replace(/\/+$/, "") : resolve(location.replace(/^file:\/\//i, ""));
}

/** A location below another: a folder under a path, or a key prefix under a URL. */
export function childLocation(root: string, name: string): string {
  return storageScheme(root) ? `${root}/${name}` : join(root, name);
}

/**
 * Where a job's checkpoints live: a local folder, or object storage through a
 * storage plugin. A checkpoint is a small manifest (chk-N.json) naming the state
 * files it needs; files are written first, the manifest last.
 */
export interface CheckpointStore {
  /** For messages. */
  readonly location: string;
  /** Writes durably; returns the bytes written when the store knows them. */
  write(data: CheckpointData): Promise<number | void> | number | void;
  /** The newest complete checkpoint, or undefined when there is none. */
  latest(): Promise<CheckpointData | undefined> | CheckpointData | undefined;
  /** The manifests kept (the newest few), oldest first. */
  retained(): Promise<CheckpointData[]>;
  /** Removes every checkpoint and state file (a start from scratch). */
  clear(): Promise<void> | void;
  /** Writes a file (path relative to the store) durably and atomically: a reader sees the old or the new content. */
  putFile(path: string, data: Uint8Array): Promise<void>;
  /** The same, from parts produced while the file is written (a state file encoded as it goes); returns its size. */
  putFileParts(path: string, parts: AsyncIterable<Uint8Array>): Promise<number>;
  /** A whole file, or undefined when there is none. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** Bytes [offset, offset + length) of a state file. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>;
  /** State files under a prefix, as paths relative to the store. */
  listFiles(prefix: string): Promise<string[]>;
  deleteFile(path: string): Promise<void>;
}

export function encodeCheckpoint(data: CheckpointData): string {
  return JSON.stringify(data, jsonReplacer);
}

/** Parses and checks a stored checkpoint; undefined when it is unreadable (so an older one is tried). */
export function decodeCheckpoint(text: string, where: string): CheckpointData | undefined {
  let data: CheckpointData;
  try {
    data = JSON.parse(text, jsonReviver);
  } catch {
    return undefined;
  }
  if (data.format !== CHECKPOINT_FORMAT) throw new CheckpointStoreError(`${where} is not a Runnel checkpoint`);
  if (data.version !== CHECKPOINT_VERSION) {
    throw new CheckpointStoreError(
      `${where} has checkpoint format version ${data.version}; this Runnel reads version ${CHECKPOINT_VERSION} (state moved to incremental ` +
        `per-table files). Start from scratch with --ignore-state (or restart the pipeline with ignoreState), or use a new --state-dir.`,
    );
  }
  return data;
}

// The epoch is in the name so that runs never overwrite each other's manifests.
const checkpointName = (id: number, epoch: number) => (epoch > 0 ? `chk-${String(id).padStart(10, "0")}-${epoch}.json` : `chk-${String(id).padStart(10, "0")}.json`);
const CHECKPOINT_NAME = /^chk-(\d+)(?:-(\d+))?\.json$/;

interface ManifestName {
  id: number;
  epoch: number;
  name: string;
}

/** Manifests by name, newest first (a higher id, then a later run), without those a later run's restore point rules out. */
function usable(names: string[], fence: FenceRecord | undefined): { keep: ManifestName[]; superseded: ManifestName[] } {
  const all = names
    .map((name) => {
      const m = CHECKPOINT_NAME.exec(name);
      return m ? { id: Number(m[1]), epoch: Number(m[2] ?? 0), name } : null;
    })
    .filter((m): m is ManifestName => m !== null)
    .sort((a, b) => b.id - a.id || b.epoch - a.epoch);
  return { keep: all.filter((m) => !superseded(fence, m.epoch, m.id)), superseded: all.filter((m) => superseded(fence, m.epoch, m.id)) };
}

/** Bytes of a streamed state file gathered per write. */
const WRITE_BYTES = 4 * 1024 * 1024;

export class LocalCheckpointStore implements CheckpointStore {
  readonly dir: string;

  get location(): string {
    return this.dir;
  }

  private readonly root: string;

  clear(): void {
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(join(this.root, "state"), { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  constructor(stateDir: string, private readonly keep = 3) {
    this.root = stateDir;
    this.dir = join(stateDir, "checkpoints");
    mkdirSync(this.dir, { recursive: true });
  }

  async putFile(path: string, data: Uint8Array): Promise<void> {
    await this.putFileParts(path, [data]);
  }

  async putFileParts(path: string, parts: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number> {
    const file = join(this.root, path);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    const fh = await open(tmp, "w");
    let size = 0;
    try {
      // Parts are written as they come, so a file of gigabytes never sits in memory whole; gathered
      // into writes of a few megabytes, since each write waits a turn of the event loop.
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        // One vectored write, no copy into a joined buffer; what a short write leaves goes the plain way.
        const { bytesWritten } = await fh.writev(pending);
        if (bytesWritten < pendingBytes) {
          const rest = Buffer.concat(pending, pendingBytes).subarray(bytesWritten);
          for (let at = 0; at < rest.byteLength; ) at += (await fh.write(rest, at, rest.byteLength - at)).bytesWritten;
        }
        pending = [];
        pendingBytes = 0;
      };
      for await (const part of parts) {
        pending.push(part);
        pendingBytes += part.byteLength;
        size += part.byteLength;
        if (pendingBytes >= WRITE_BYTES) await flush();
      }
      if (pendingBytes > 0) await flush();
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, file);
    // The directory entry must survive a crash too, before the manifest names the file.
    const dir = await open(dirname(file), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return size;
  }

  async readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
    const fh = await open(join(this.root, path), "r");
    try {
      const out = new Uint8Array(length);
      let at = 0;
      while (at < length) {
        const { bytesRead } = await fh.read(out, at, length - at, offset + at);
        if (bytesRead === 0) throw new CheckpointStoreError(`state file ${path} in ${this.root} is shorter than its checkpoint says`);
        at += bytesRead;
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async readFile(path: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(join(this.root, path)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async listFiles(prefix: string): Promise<string[]> {
    const base = join(this.root, prefix);
    if (!existsSync(base)) return [];
    const entries = await readdir(base, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => relative(this.root, join(e.parentPath, e.name)));
  }

  async deleteFile(path: string): Promise<void> {
    await rm(join(this.root, path), { force: true });
  }

  async retained(): Promise<CheckpointData[]> {
    const out: CheckpointData[] = [];
    for (const m of (await this.manifests()).keep.reverse()) {
      try {
        const data = decodeCheckpoint(readFileSync(join(this.dir, m.name), "utf8"), join(this.dir, m.name));
        if (data) out.push(data);
      } catch {
        // unreadable: it references nothing we could restore
      }
    }
    return out;
  }

  async write(data: CheckpointData): Promise<number> {
    const final = join(this.dir, checkpointName(data.checkpointId, data.epoch ?? 0));
    const tmp = `${final}.tmp`;
    const fd = openSync(tmp, "w");
    let bytes: number;
    try {
      bytes = writeSync(fd, encodeCheckpoint(data));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    const dirFd = openSync(this.dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    await this.prune();
    return bytes;
  }

  private async manifests(): Promise<ReturnType<typeof usable>> {
    if (!existsSync(this.dir)) return { keep: [], superseded: [] };
    return usable(readdirSync(this.dir), await readFence(this));
  }

  private async prune(): Promise<void> {
    const { keep, superseded } = await this.manifests();
    for (const m of [...keep.slice(this.keep), ...superseded]) rmSync(join(this.dir, m.name), { force: true });
    for (const f of readdirSync(this.dir)) if (f.endsWith(".tmp")) rmSync(join(this.dir, f), { force: true });
  }

  /** The newest complete checkpoint, or undefined when there is none. */
  async latest(): Promise<CheckpointData | undefined> {
    for (const m of (await this.manifests()).keep) {
      const path = join(this.dir, m.name);
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        continue;
      }
      const data = decodeCheckpoint(text, path);
      if (data) return data; // else unreadable (e.g. disk full mid-write before rename): try the one before
    }
    return undefined;
  }
}

/**
 * Checkpoints as objects (`<prefix>/checkpoints/chk-N.json`) in a storage
 * plugin's object store. Object PUTs are atomic, so a crash leaves the old or
 * the new checkpoint, as with local files.
 */
export class ObjectCheckpointStore implements CheckpointStore {
  constructor(
    readonly location: string,
    private readonly storage: import("../plugin-api/index.ts").ObjectStorage,
    private readonly keep = 3,
  ) {}

  private async manifests(): Promise<ReturnType<typeof usable>> {
    const names = (await this.storage.list("checkpoints/")).map((k) => k.slice(k.lastIndexOf("/") + 1));
    return usable(names, await readFence(this));
  }

  async write(data: CheckpointData): Promise<number> {
    const bytes = new TextEncoder().encode(encodeCheckpoint(data));
    await this.storage.put(`checkpoints/${checkpointName(data.checkpointId, data.epoch ?? 0)}`, bytes);
    const { keep, superseded } = await this.manifests();
    for (const m of [...keep.slice(this.keep), ...superseded]) await this.storage.delete(`checkpoints/${m.name}`);
    return bytes.byteLength;
  }

  async latest(): Promise<CheckpointData | undefined> {
    await this.storage.check?.();
    for (const m of (await this.manifests()).keep) {
      const key = `checkpoints/${m.name}`;
      const bytes = await this.storage.get(key);
      if (!bytes) continue;
      const data = decodeCheckpoint(new TextDecoder().decode(bytes), `${this.location}/${key}`);
      if (data) return data;
    }
    return undefined;
  }

  async clear(): Promise<void> {
    for (const key of await this.storage.list("checkpoints/")) await this.storage.delete(key);
    for (const key of await this.storage.list("state/")) await this.storage.delete(key);
  }

  async putFile(path: string, data: Uint8Array): Promise<void> {
    await this.storage.put(path, data);
  }

  async putFileParts(path: string, parts: AsyncIterable<Uint8Array>): Promise<number> {
    // Object storage takes whole objects: the parts are gathered first (a multipart upload would bound this memory too).
    const all: Uint8Array[] = [];
    for await (const part of parts) all.push(part);
    const data = Buffer.concat(all);
    await this.storage.put(path, data);
    return data.byteLength;
  }

  async readFile(path: string): Promise<Uint8Array | undefined> {
    return this.storage.get(path);
  }

  /** Whole objects fetched where the storage has no range reads, kept for the restore reading them. */
  private readonly wholeObjects = new Map<string, Promise<Uint8Array | undefined>>();

  async readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
    if (this.storage.getRange) return this.storage.getRange(path, offset, length);
    let whole = this.wholeObjects.get(path);
    if (!whole) this.wholeObjects.set(path, (whole = this.storage.get(path)));
    const bytes = await whole;
    if (!bytes || bytes.byteLength < offset + length) throw new CheckpointStoreError(`state file ${this.location}/${path} is missing or shorter than its checkpoint says`);
    return bytes.subarray(offset, offset + length);
  }

  async listFiles(prefix: string): Promise<string[]> {
    return this.storage.list(prefix);
  }

  async deleteFile(path: string): Promise<void> {
    this.wholeObjects.delete(path);
    await this.storage.delete(path);
  }

  async retained(): Promise<CheckpointData[]> {
    const out: CheckpointData[] = [];
    for (const m of (await this.manifests()).keep.reverse()) {
      const key = `checkpoints/${m.name}`;
      const bytes = await this.storage.get(key);
      if (!bytes) continue;
      try {
        const data = decodeCheckpoint(new TextDecoder().decode(bytes), `${this.location}/${key}`);
        if (data) out.push(data);
      } catch {
        // unreadable: it references nothing we could restore
      }
    }
    return out;
  }
}

// State may hold binary values (BYTEA) and big integers; JSON carries them tagged.
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") };
  if (typeof value === "bigint") return { $bigint: value.toString() };
  return value;
}

export function jsonReviver(_key: string, value: any): unknown {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if (typeof value.$bytes === "string" && Object.keys(value).length === 1) {
      return new Uint8Array(Buffer.from(value.$bytes, "base64"));
    }
    if (typeof value.$bigint === "string" && Object.keys(value).length === 1) return BigInt(value.$bigint);
  }
  return value;
}

/**
 * A deep copy of state as it will be stored. Operators may keep mutating their
 * live state after a barrier; the checkpoint must hold the state at the barrier.
 */
export function freezeState<T>(state: T): T {
  return JSON.parse(JSON.stringify(state, jsonReplacer), jsonReviver);
}
