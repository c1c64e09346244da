/**
 * Durable checkpoints under the state directory: one file per completed
 * checkpoint, written to a temporary name, fsynced and renamed, so a crash at
 * any moment leaves either the old or the new checkpoint — never half of one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";

export const CHECKPOINT_FORMAT = "runnel-checkpoint";
export const CHECKPOINT_VERSION = 1;

export interface CheckpointData {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Fingerprint of the planned pipeline; a state dir belongs to one pipeline. */
  pipeline: string;
  /**
   * Per operator, hashes of what gives its state meaning (core/dataflow/fingerprint.ts);
   * absent in checkpoints of earlier versions, which are matched by `pipeline` alone.
   */
  signatures?: Record<string, { label: string; own: string; full: string }>;
  checkpointId: number;
  createdAt: number;
  /** What followed the barrier: a final checkpoint says whether the job ended or was stopped. */
  then: "continue" | "end" | "stop";
  /** Operator id → subtask index → state. */
  operators: Record<string, Record<string, unknown>>;
}

export class CheckpointStoreError extends Error {}

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

/** Where a job's checkpoints live: a local folder, or object storage through a storage plugin. */
export interface CheckpointStore {
  /** For messages. */
  readonly location: string;
  write(data: CheckpointData): Promise<void> | void;
  /** The newest complete checkpoint, or undefined when there is none. */
  latest(): Promise<CheckpointData | undefined> | CheckpointData | undefined;
  /** Removes every checkpoint (a start from scratch). */
  clear(): Promise<void> | void;
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
      `${where} has checkpoint format version ${data.version}; this Runnel reads version ${CHECKPOINT_VERSION}. Use a new --state-dir.`,
    );
  }
  return data;
}

const checkpointName = (id: number) => `chk-${String(id).padStart(10, "0")}.json`;
const CHECKPOINT_NAME = /^chk-(\d+)\.json$/;

export class LocalCheckpointStore implements CheckpointStore {
  readonly dir: string;

  get location(): string {
    return this.dir;
  }

  clear(): void {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  constructor(stateDir: string, private readonly keep = 3) {
    this.dir = join(stateDir, "checkpoints");
    mkdirSync(this.dir, { recursive: true });
  }

  private fileOf(id: number): string {
    return join(this.dir, checkpointName(id));
  }

  write(data: CheckpointData): void {
    const final = this.fileOf(data.checkpointId);
    const tmp = `${final}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, encodeCheckpoint(data));
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
    this.prune();
  }

  private ids(): number[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .map((f) => CHECKPOINT_NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  private prune(): void {
    const ids = this.ids();
    for (const id of ids.slice(0, Math.max(0, ids.length - this.keep))) rmSync(this.fileOf(id), { force: true });
    for (const f of readdirSync(this.dir)) if (f.endsWith(".tmp")) rmSync(join(this.dir, f), { force: true });
  }

  /** The newest complete checkpoint, or undefined when there is none. */
  latest(): CheckpointData | undefined {
    const ids = this.ids();
    for (let i = ids.length - 1; i >= 0; i--) {
      const path = this.fileOf(ids[i]!);
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

  private async ids(): Promise<number[]> {
    return (await this.storage.list("checkpoints/"))
      .map((k) => CHECKPOINT_NAME.exec(k.slice(k.lastIndexOf("/") + 1)))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  async write(data: CheckpointData): Promise<void> {
    await this.storage.put(`checkpoints/${checkpointName(data.checkpointId)}`, new TextEncoder().encode(encodeCheckpoint(data)));
    const ids = await this.ids();
    for (const id of ids.slice(0, Math.max(0, ids.length - this.keep))) await this.storage.delete(`checkpoints/${checkpointName(id)}`);
  }

  async latest(): Promise<CheckpointData | undefined> {
    await this.storage.check?.();
    const ids = await this.ids();
    for (let i = ids.length - 1; i >= 0; i--) {
      const key = `checkpoints/${checkpointName(ids[i]!)}`;
      const bytes = await this.storage.get(key);
      if (!bytes) continue;
      const data = decodeCheckpoint(new TextDecoder().decode(bytes), `${this.location}/${key}`);
      if (data) return data;
    }
    return undefined;
  }

  async clear(): Promise<void> {
    for (const id of await this.ids()) await this.storage.delete(`checkpoints/${checkpointName(id)}`);
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
