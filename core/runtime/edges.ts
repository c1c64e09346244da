/**
 * How a subtask's output reaches the next operator's subtasks: forward (same
 * index), hash (by group key) or round robin. Control messages go to every channel.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { hashValues } from "../state/hash.ts";
import { subtaskOfHash } from "../state/key-groups.ts";
import type { ChannelSink } from "./channel.ts";
import type { Message } from "./messages.ts";

/**
 * A row's key hash. It may remember the last key it hashed (a fired window's rows
 * share one struct; hot keys repeat): `reset` forgets it, once per batch, so
 * nothing is assumed about a value beyond the batch it came in.
 */
export type KeyHasher = ((row: Row) => number) & { reset?: () => void };

/** The hasher of a key made of `keys`' values, as keyed state hashes them; it remembers the last key until reset. */
export function keyHasherOf(keys: ((row: Row, time: number) => unknown)[]): KeyHasher {
  const scratch = new Array(keys.length);
  const last = new Array(keys.length);
  let lastHash: number | null = null;
  const hasher: KeyHasher = (row) => {
    let same = lastHash !== null;
    for (let k = 0; k < keys.length; k++) {
      const v = keys[k]!(row, 0);
      if (v !== last[k]) same = false;
      scratch[k] = v;
    }
    if (same) return lastHash!;
    for (let k = 0; k < keys.length; k++) last[k] = scratch[k];
    return (lastHash = hashValues(scratch));
  };
  hasher.reset = () => {
    lastHash = null;
    last.fill(undefined);
  };
  return hasher;
}

export abstract class OutputEdge {
  constructor(readonly channels: ChannelSink[]) {}
  abstract send(batch: Batch): Promise<void>;

  async broadcast(msg: Message): Promise<void> {
    for (const ch of this.channels) await ch.send(msg);
  }
}

export class ForwardEdge extends OutputEdge {
  async send(batch: Batch): Promise<void> {
    await this.channels[0]!.send({ kind: "batch", batch });
  }
}

export class RoundRobinEdge extends OutputEdge {
  private next = 0;
  async send(batch: Batch): Promise<void> {
    const ch = this.channels[this.next]!;
    this.next = (this.next + 1) % this.channels.length;
    await ch.send({ kind: "batch", batch });
  }
}

/** Routes each row by its key's key group to the subtask owning that group, as restores assign them. */
export class HashEdge extends OutputEdge {
  constructor(
    channels: ChannelSink[],
    private readonly hash: KeyHasher,
    private readonly maxParallelism: number,
  ) {
    super(channels);
  }

  /** Each row's target subtask, reused across batches. */
  private targets = new Uint16Array(0);

  async send(batch: Batch): Promise<void> {
    const n = this.channels.length;
    if (n === 1) {
      await this.channels[0]!.send({ kind: "batch", batch });
      return;
    }
    if (batch.ops) return this.sendChanges(batch);
    const { rows, times } = batch;
    const len = rows.length;
    if (this.targets.length < len) this.targets = new Uint16Array(Math.max(len, 2 * this.targets.length));
    const targets = this.targets;
    const counts = new Int32Array(n);
    const hash = this.hash;
    hash.reset?.();
    for (let i = 0; i < len; i++) {
      const t = subtaskOfHash(hash(rows[i]!), n, this.maxParallelism);
      targets[i] = t;
      counts[t]!++;
    }
    // Sized once and filled by index: no per-row closure or growing arrays.
    const parts: Batch[] = new Array(n);
    for (let t = 0; t < n; t++) {
      if (counts[t] === len) {
        await this.channels[t]!.send({ kind: "batch", batch });
        return;
      }
      parts[t] = { rows: new Array(counts[t]!), times: new Array(counts[t]!) };
    }
    const at = new Int32Array(n);
    for (let i = 0; i < len; i++) {
      const t = targets[i]!;
      const part = parts[t]!;
      const j = at[t]!++;
      part.rows[j] = rows[i]!;
      part.times[j] = times[i]!;
    }
    for (let t = 0; t < n; t++) if (counts[t]! > 0) await this.channels[t]!.send({ kind: "batch", batch: parts[t]! });
  }

  /** An updating stream's batch: an update whose key moves subtasks becomes a retraction there and an insert here. */
  private async sendChanges(batch: Batch): Promise<void> {
    const n = this.channels.length;
    const parts: (Batch | undefined)[] = new Array(n);
    const { rows, times, ops, before } = batch;
    const push = (target: number, row: Row, time: number, op: RowOp | undefined, old: Row | null) => {
      let part = parts[target];
      if (part === undefined) part = parts[target] = { rows: [], times: [], ops: [], before: [] };
      part.rows.push(row);
      part.times.push(time);
      part.ops!.push(op!);
      part.before!.push(old);
    };
    this.hash.reset?.();
    for (let i = 0; i < rows.length; i++) {
      const target = subtaskOfHash(this.hash(rows[i]!), n, this.maxParallelism);
      const op = ops?.[i] as RowOp | undefined;
      const old = before?.[i] ?? null;
      if (op === RowOp.Update && old) {
        // The old value's key may live on another subtask: it must see the retraction there,
        // and this one an insert, or each keeps a stale row.
        const oldTarget = subtaskOfHash(this.hash(old), n, this.maxParallelism);
        if (oldTarget !== target) {
          push(oldTarget, old, times[i]!, RowOp.Delete, old);
          push(target, rows[i]!, times[i]!, RowOp.Insert, null);
          continue;
        }
      }
      push(target, rows[i]!, times[i]!, op, old);
    }
    for (let t = 0; t < n; t++) {
      const part = parts[t];
      if (part) await this.channels[t]!.send({ kind: "batch", batch: part });
    }
  }
}

/** The end of a chain: sends batches along every outgoing edge. */
export class EdgeEmitter {
  constructor(readonly edges: OutputEdge[]) {}

  async emit(batch: Batch): Promise<void> {
    if (batch.rows.length === 0) return;
    for (const e of this.edges) await e.send(batch);
  }

  async broadcast(msg: Message): Promise<void> {
    for (const e of this.edges) await e.broadcast(msg);
  }
}
