/**
 * Durable checkpoints under the state directory: one file per completed
 * checkpoint, written to a temporary name, fsynced and renamed, so a crash at
 * any moment leaves either the old or the new checkpoint — never half of one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export const CHECKPOINT_FORMAT = "runnel-checkpoint";
export const CHECKPOINT_VERSION = 1;

export interface CheckpointData {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  /** Fingerprint of the planned pipeline; a state dir belongs to one pipeline. */
  pipeline: string;
  checkpointId: number;
  createdAt: number;
  /** What followed the barrier: a final checkpoint says whether the job ended or was stopped. */
  then: "continue" | "end" | "stop";
  /** Operator id → subtask index → state. */
  operators: Record<string, Record<string, unknown>>;
}

export class CheckpointStoreError extends Error {}

export class LocalCheckpointStore {
  readonly dir: string;

  constructor(stateDir: string, private readonly keep = 3) {
    this.dir = join(stateDir, "checkpoints");
    mkdirSync(this.dir, { recursive: true });
  }

  private fileOf(id: number): string {
    return join(this.dir, `chk-${String(id).padStart(10, "0")}.json`);
  }

  write(data: CheckpointData): void {
    const final = this.fileOf(data.checkpointId);
    const tmp = `${final}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, JSON.stringify(data, jsonReplacer));
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
      .map((f) => /^chk-(\d+)\.json$/.exec(f))
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
      let data: CheckpointData;
      try {
        data = JSON.parse(readFileSync(path, "utf8"), jsonReviver);
      } catch {
        continue; // unreadable (e.g. disk full mid-write before rename): try the one before
      }
      if (data.format !== CHECKPOINT_FORMAT) {
        throw new CheckpointStoreError(`${path} is not a Runnel checkpoint`);
      }
      if (data.version !== CHECKPOINT_VERSION) {
        throw new CheckpointStoreError(
          `${path} has checkpoint format version ${data.version}; this Runnel reads version ${CHECKPOINT_VERSION}. Use a new --state-dir.`,
        );
      }
      return data;
    }
    return undefined;
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
