/**
 * The job's state backend: writes each subtask's table snapshots as files in the
 * checkpoint store (in the background, while processing goes on), reads back on
 * restore only the key groups a subtask owns now, and deletes files no retained
 * checkpoint references.
 */
import type { CheckpointData, CheckpointStore, SubtaskCheckpoint } from "../checkpoint/store.ts";
import { decodeFooter, encodeFooter, type StateFileFooter } from "./file-format.ts";
import { keyGroupRange } from "./key-groups.ts";
import type { OperatorState, OperatorStateSnapshot, RestoredFile, RestoredOperator, RestoredTable, StateFileRef } from "./operator-state.ts";
import type { TableSnapshot } from "./tables.ts";
import { crashPoint } from "../plugin-api/index.ts";

/** Bytes read from a file's end to find its footer (read again when the footer is longer). */
const TAIL_BYTES = 64 * 1024;

export interface WrittenState {
  part: SubtaskCheckpoint;
  bytes: number;
}

export class StateBackend {
  constructor(
    private readonly store: CheckpointStore,
    readonly maxParallelism: number,
    private readonly restored: CheckpointData | undefined,
  ) {}

  private async footer(ref: StateFileRef): Promise<{ footer: StateFileFooter; start: number }> {
    const n = Math.min(ref.bytes, TAIL_BYTES);
    let tail = await this.store.readRange(ref.path, ref.bytes - n, n);
    let decoded = decodeFooter(tail, ref.bytes, `${this.store.location}/${ref.path}`);
    if (!decoded.footer) {
      const size = ref.bytes - decoded.start;
      tail = await this.store.readRange(ref.path, decoded.start, size);
      decoded = decodeFooter(tail, ref.bytes, `${this.store.location}/${ref.path}`);
    }
    return decoded;
  }

  /** The records of key groups [lo, hi) in a file, in file order, reading only their chunks (adjacent ones in one read). */
  private async readGroups(ref: StateFileRef, lo: number, hi: number): Promise<RestoredFile> {
    const { footer } = await this.footer(ref);
    const wanted = footer.groups.filter(([kg]) => kg >= lo && kg < hi);
    const chunks: Uint8Array[] = [];
    const groups: number[] = [];
    let puts = 0;
    let i = 0;
    while (i < wanted.length) {
      let j = i;
      while (j + 1 < wanted.length && wanted[j + 1]![1] === wanted[j]![1] + wanted[j]![2]) j++;
      const offset = wanted[i]![1];
      const length = wanted[j]![1] + wanted[j]![2] - offset;
      const bytes = length > 0 ? await this.store.readRange(ref.path, offset, length) : new Uint8Array(0);
      for (let k = i; k <= j; k++) {
        const [kg, start, len, groupPuts] = wanted[k]!;
        chunks.push(bytes.subarray(start - offset, start - offset + len));
        groups.push(kg);
        puts += groupPuts;
      }
      i = j + 1;
    }
    return { chunks, groups, puts, droppedUpTo: footer.droppedUpTo };
  }

  /** What subtask `index` of `operatorId` takes over from the restored checkpoint, at `parallelism`. */
  async restoreFor(operatorId: string, index: number, parallelism: number): Promise<RestoredOperator | undefined> {
    const op = this.restored?.operators[operatorId];
    if (!op) return undefined;
    const [lo, hi] = keyGroupRange(index, parallelism, this.maxParallelism);
    const values: RestoredOperator["values"] = {};
    const names = new Set<string>();
    let finished = true;
    for (const [old, sub] of Object.entries(op)) {
      if (!sub.finished) finished = false;
      values[old] = sub.values;
      for (const name of Object.keys(sub.tables)) names.add(name);
    }
    const tables: Record<string, RestoredTable> = {};
    for (const name of names) {
      const reads: { checkpoint: number; part: Promise<RestoredFile> }[] = [];
      const chain = new Map<string, StateFileRef>();
      for (const sub of Object.values(op)) {
        const t = sub.tables[name];
        if (!t) continue;
        const from = Math.max(lo, t.range[0]);
        const to = Math.min(hi, t.range[1]);
        if (from >= to) continue;
        for (const ref of t.files) {
          reads.push({ checkpoint: ref.checkpoint, part: this.readGroups(ref, from, to) });
          chain.set(ref.path, ref);
        }
      }
      // Files of one checkpoint cover disjoint key groups; across checkpoints, older first.
      reads.sort((a, b) => a.checkpoint - b.checkpoint);
      const files = await Promise.all(reads.map((r) => r.part));
      tables[name] = { files, chain: [...chain.values()].sort((a, b) => a.checkpoint - b.checkpoint) };
    }
    return { values, tables, finished };
  }

  /** Writes a subtask's table snapshots as they are encoded (each table's file a chunk at a time); returns its part of the manifest. */
  async write(operatorId: string, index: number, parallelism: number, snap: OperatorStateSnapshot, state: OperatorState): Promise<WrittenState> {
    const range = keyGroupRange(index, parallelism, this.maxParallelism);
    const written = await Promise.all(snap.tables.map((t) => this.writeTable(operatorId, index, t, snap.chains[t.table] ?? [])));
    const tables: SubtaskCheckpoint["tables"] = {};
    let bytes = 0;
    for (const [i, t] of snap.tables.entries()) {
      const { chain, size } = written[i]!;
      state.written(t.table, chain, t.checkpoint);
      tables[t.table] = { range, files: chain };
      bytes += size;
    }
    state.completed(snap.checkpoint);
    const part: SubtaskCheckpoint = { values: snap.values, tables };
    if (snap.finished) part.finished = true;
    return { part, bytes };
  }

  /** One table's file (none for a delta with no change), streamed from its encoder into the store; the chain it leaves. */
  private async writeTable(operatorId: string, index: number, t: TableSnapshot, chain: StateFileRef[]): Promise<{ chain: StateFileRef[]; size: number }> {
    const chunks = t.chunks[Symbol.asyncIterator]();
    const first = await chunks.next();
    if (first.done && !t.full && t.droppedUpTo === null) return { chain, size: 0 };
    const groups: StateFileFooter["groups"] = [];
    let offset = 0;
    let puts = 0;
    let deletes = 0;
    // A full file that replaces a chain of deltas (a rebase, the backend's compaction): crash tests stop there midway.
    const rebase = t.rebase === true;
    async function* parts(): AsyncGenerator<Uint8Array> {
      for (let next = first; !next.done; next = await chunks.next()) {
        if (rebase && groups.length > 0) crashPoint("state-rebase-midway");
        const c = next.value;
        groups.push([c.kg, offset, c.bytes.byteLength, c.puts, c.deletes]);
        offset += c.bytes.byteLength;
        puts += c.puts;
        deletes += c.deletes;
        yield c.bytes;
      }
      yield encodeFooter({ table: t.table, checkpoint: t.checkpoint, full: t.full, droppedUpTo: t.droppedUpTo, groups });
    }
    const path = `state/${operatorId}/${t.table}/${t.checkpoint}-${index}-${Math.random().toString(36).slice(2, 8)}.rst`;
    const size = await this.store.putFileParts(path, parts());
    t.written?.();
    const ref: StateFileRef = { path, checkpoint: t.checkpoint, full: t.full, bytes: size, puts, deletes };
    return { chain: t.full ? [ref] : [...chain, ref], size };
  }

  /** Deletes state files that no retained checkpoint references (after a new one is durable). */
  async collectGarbage(): Promise<number> {
    const referenced = new Set<string>();
    const retained = await this.store.retained();
    if (retained.length === 0) return 0;
    const newest = retained[retained.length - 1]!.checkpointId;
    for (const cp of retained) {
      for (const subtasks of Object.values(cp.operators)) {
        for (const sub of Object.values(subtasks)) for (const t of Object.values(sub.tables)) for (const f of t.files) referenced.add(f.path);
      }
    }
    let removed = 0;
    for (const path of await this.store.listFiles("state/")) {
      if (referenced.has(path)) continue;
      // Files of a checkpoint newer than the newest retained one belong to a checkpoint still being written.
      const checkpoint = Number(/\/(\d+)-\d+-[a-z0-9]+\.rst$/.exec(path)?.[1] ?? NaN);
      if (!(checkpoint <= newest)) continue;
      await this.store.deleteFile(path);
      removed++;
    }
    return removed;
  }
}
