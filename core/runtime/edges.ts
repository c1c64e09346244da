/**
 * How a subtask's output reaches the next operator's subtasks: forward (same
 * index), hash (by group key) or round robin. Control messages go to every channel.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { subtaskOfHash } from "../state/key-groups.ts";
import type { ChannelSink } from "./channel.ts";
import type { Message } from "./messages.ts";

export type KeyHasher = (row: Row) => number;

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

  async send(batch: Batch): Promise<void> {
    const n = this.channels.length;
    if (n === 1) {
      await this.channels[0]!.send({ kind: "batch", batch });
      return;
    }
    const parts: (Batch | undefined)[] = new Array(n);
    const { rows, times, ops, before } = batch;
    const push = (target: number, row: Row, time: number, op: RowOp | undefined, old: Row | null) => {
      let part = parts[target];
      if (part === undefined) {
        part = parts[target] = { rows: [], times: [] };
        if (ops) {
          part.ops = [];
          part.before = [];
        }
      }
      part.rows.push(row);
      part.times.push(time);
      if (ops) {
        part.ops!.push(op!);
        part.before!.push(old);
      }
    };
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
