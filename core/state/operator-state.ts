/**
 * The state of one operator subtask, as the operator declares it:
 * - keyed tables (`keyed`, `timeKeyed`): large, partitioned by key group,
 *   checkpointed incrementally into files, restored by key-group range;
 * - small per-subtask values: `union` (on restore every subtask sees all the old
 *   subtasks' values: watermarks, source positions) and `list` (old subtask j's
 *   value goes to subtask j mod parallelism: a sink's pending commit).
 * The backend owns snapshot, restore, rescaling and expiry; operators write no
 * snapshot code of their own.
 */
import { keyGroupRange } from "./key-groups.ts";
import { join } from "node:path";
import { DiskKeyedTable, type CacheBudget } from "./disk-table.ts";
import { KeyedTable, TimeKeyedTable, type StateCodec, type TableSnapshot, type TrackedTable } from "./tables.ts";

/** Keyed tables on disk with a cache in memory (time tables stay in memory). */
export interface DiskStateOptions {
  /** Scratch folder for this process's databases (rebuilt from checkpoints on restore). */
  dir: string;
  budget: CacheBudget;
}

/** A value this subtask keeps, with what the old subtasks kept under the same name. */
export class SubtaskValue<T> {
  /** Stored at each checkpoint (undefined: nothing). */
  value: T | undefined = undefined;
  constructor(
    /** The old values this subtask takes over (all of them for union state). */
    readonly restored: T[],
  ) {}
}

/**
 * A file's records of the key groups a subtask restores, still encoded: a table
 * decodes them a chunk at a time as it applies them, so a restore never holds
 * millions of decoded records at once (their collection cost more than decoding).
 */
export interface RestoredFile {
  /** Record sequences in file order. */
  chunks: Uint8Array[];
  /** The key group of each chunk. */
  groups: number[];
  /** Puts among them (a table makes room for them up front). */
  puts: number;
  droppedUpTo: number | null;
}

/** A restored table's records for this subtask's key groups, file by file, in checkpoint order. */
export interface RestoredTable {
  files: RestoredFile[];
  /** Files of the chain this subtask continues from. */
  chain: StateFileRef[];
}

export interface StateFileRef {
  path: string;
  checkpoint: number;
  full: boolean;
  bytes: number;
  puts: number;
  deletes: number;
}

export interface RestoredOperator {
  /** Old subtask index → value name → value. */
  values: Record<string, Record<string, unknown>>;
  tables: Record<string, RestoredTable>;
  /** Every old subtask had finished (see `OperatorState.finish`). */
  finished: boolean;
}

export interface OperatorStateSnapshot {
  checkpoint: number;
  values: Record<string, unknown>;
  tables: TableSnapshot[];
  /** Files each table continues from (the chain a delta extends). */
  chains: Record<string, StateFileRef[]>;
  /** The operator had finished: its tables were left out (see `OperatorState.finish`). */
  finished?: true;
}

/**
 * When a table writes a full file again instead of a delta (a rebase): when
 * the delta due now would make most records of its files stale (overwritten
 * or deleted by later ones), so a restore never reads more than about twice
 * the records it keeps, or once the chain is this long, so it reads few files. Deltas of new keys
 * are not stale: a table that only grows is not read back whole at every other
 * checkpoint (a disk table's full file reads its whole database). A job
 * touching 1% of its keys per interval rebases every 32 checkpoints rather than
 * rewriting everything every few.
 */
export const MAX_CHAIN = 32;

/** Whether a table's next snapshot is a full file, given the files its state is in now, the entries it holds and the records a delta would add. */
export function rebaseDue(chain: readonly StateFileRef[], entries: number, pending: number): boolean {
  if (chain.length === 0 || chain.length >= MAX_CHAIN) return true;
  let records = pending;
  for (const ref of chain) records += ref.puts + ref.deletes;
  return records > 2 * entries;
}

export class OperatorState {
  private readonly tables = new Map<string, TrackedTable<any>>();
  private readonly values = new Map<string, SubtaskValue<unknown>>();
  private readonly chains = new Map<string, StateFileRef[]>();
  private readonly chainCheckpoint = new Map<string, number>();
  /** The checkpoint whose snapshot was taken but whose files are not written yet. */
  private unwritten: number | null = null;
  private finished = false;
  readonly keyGroups: [number, number];

  constructor(
    readonly operatorId: string,
    readonly subtaskIndex: number,
    readonly parallelism: number,
    readonly maxParallelism: number,
    private readonly restored: RestoredOperator | undefined,
    private readonly disk?: DiskStateOptions,
  ) {
    this.keyGroups = keyGroupRange(subtaskIndex, parallelism, maxParallelism);
  }

  private declare<T extends TrackedTable<any>>(name: string, make: () => T): T {
    if (this.tables.has(name) || this.values.has(name)) throw new Error(`state '${name}' of operator ${this.operatorId} is declared twice`);
    const table = make();
    const restored = this.restored?.tables[name];
    if (restored) {
      table.applyRestored(restored.files);
      this.chains.set(name, restored.chain);
    }
    this.tables.set(name, table);
    return table;
  }

  /** `expiryGranularity` (µs) indexes entries by their time, for `expire`. */
  keyed<V>(name: string, codec?: StateCodec<V>, options: { expiryGranularity?: number } = {}): KeyedTable<V> {
    const disk = this.disk;
    if (disk) {
      const dir = join(disk.dir, `${this.operatorId}-${this.subtaskIndex}`.replace(/[^A-Za-z0-9_.-]/g, "_"));
      return this.declare(name, () => new DiskKeyedTable<V>(name, codec ?? null, this.maxParallelism, options, dir, disk.budget));
    }
    return this.declare(name, () => new KeyedTable<V>(name, codec ?? null, this.maxParallelism, options));
  }

  /** Between batches: disk tables write back what exceeds the cache. */
  maintain(): void {
    for (const t of this.tables.values()) t.maintain();
  }

  close(): void {
    for (const t of this.tables.values()) t.close();
  }

  timeKeyed<V>(name: string, codec?: StateCodec<V>): TimeKeyedTable<V> {
    return this.declare(name, () => new TimeKeyedTable<V>(name, codec ?? null, this.maxParallelism));
  }

  private value<T>(name: string, pick: (oldIndex: number) => boolean): SubtaskValue<T> {
    if (this.tables.has(name) || this.values.has(name)) throw new Error(`state '${name}' of operator ${this.operatorId} is declared twice`);
    const restored: T[] = [];
    for (const [old, values] of Object.entries(this.restored?.values ?? {}).sort(([a], [b]) => Number(a) - Number(b))) {
      if (pick(Number(old)) && name in values) restored.push(values[name] as T);
    }
    const v = new SubtaskValue<T>(restored);
    this.values.set(name, v as SubtaskValue<unknown>);
    return v;
  }

  /** A value per subtask; every subtask gets all the old ones back (watermarks, source positions). */
  union<T>(name: string): SubtaskValue<T> {
    return this.value(name, () => true);
  }

  /** A value per subtask; old subtask j's goes to subtask j mod parallelism (a sink's pending commit). */
  list<T>(name: string): SubtaskValue<T> {
    return this.value(name, (old) => old % this.parallelism === this.subtaskIndex);
  }

  /**
   * Every input of the operator has ended and it has emitted all it will
   * (FLIP-147's finished task): no record can reach its tables again, so later
   * checkpoints carry a finished marker instead of encoding them. Values stay
   * (small; a source's positions). Not for sinks, whose pending commits must stay.
   */
  finish(): void {
    this.finished = true;
  }

  /** Every old subtask this state was restored from had finished (a source restored so ends at once). */
  get restoredFinished(): boolean {
    return this.restored?.finished ?? false;
  }

  /** Starts this subtask's part of checkpoint `checkpoint`; tables are encoded in the background. */
  snapshot(checkpoint: number): OperatorStateSnapshot {
    const values: Record<string, unknown> = {};
    for (const [name, v] of this.values) if (v.value !== undefined) values[name] = v.value;
    const tables: TableSnapshot[] = [];
    const chains: Record<string, StateFileRef[]> = {};
    // A stateless operator needs no marker: it has nothing to restore either way.
    if (this.finished && (this.tables.size > 0 || this.values.size > 0)) return { checkpoint, values, tables, chains, finished: true };
    // A snapshot whose files were never written (its checkpoint timed out or failed) took changes
    // that no file holds: this one writes everything.
    const previousLost = this.unwritten !== null;
    this.unwritten = checkpoint;
    for (const [name, table] of this.tables) {
      const chain = this.chains.get(name) ?? [];
      const full = previousLost || rebaseDue(chain, table.size, table.pendingChanges);
      const snapshot = table.snapshot(checkpoint, full);
      if (full && chain.length > 0) snapshot.rebase = true;
      tables.push(snapshot);
      chains[name] = full ? [] : chain;
    }
    return { checkpoint, values, tables, chains };
  }

  /** After checkpoint `checkpoint`'s files are written: the chain each table continues from. */
  written(table: string, chain: StateFileRef[], checkpoint: number): void {
    // A late write of an abandoned checkpoint must not replace a newer chain.
    if ((this.chainCheckpoint.get(table) ?? 0) > checkpoint) return;
    this.chainCheckpoint.set(table, checkpoint);
    this.chains.set(table, chain);
  }

  /** All of `checkpoint`'s tables are written. */
  completed(checkpoint: number): void {
    if (this.unwritten === checkpoint) this.unwritten = null;
  }

  /** Entries held, per table (for metrics). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, t] of this.tables) out[name] = t.size;
    return out;
  }
}
