/**
 * Operators that run one after another inside one subtask, without a channel
 * between them (Flink's operator chaining). The chain's end sends to the edges.
 */
import type { Batch } from "../plugin-api/index.ts";
import type { Collector, Operator, OperatorContext } from "../operators/operator.ts";
import type { EdgeEmitter } from "./edges.ts";
import type { Message } from "./messages.ts";
import type { OperatorMetrics } from "./metrics.ts";
import type { OperatorState, OperatorStateSnapshot } from "../state/operator-state.ts";

export interface ChainedOperator {
  id: string;
  /** The identity its state is checkpointed under (stable across compatible query edits). */
  stateId: string;
  operator: Operator;
  metrics: OperatorMetrics;
  /** Set when the chain opens. */
  state?: OperatorState;
  /** Keeps its state once its input ended (a sink: its pending commits). */
  keepsStateWhenFinished?: boolean;
}

/** One operator subtask's part of a checkpoint, handed to the coordinator at the barrier. */
export interface SubtaskSnapshot {
  operatorId: string;
  index: number;
  parallelism: number;
  state: OperatorState;
  snapshot: OperatorStateSnapshot;
}

class CountingCollector implements Collector {
  constructor(
    private readonly metrics: OperatorMetrics,
    private readonly next: (batch: Batch) => void | Promise<void>,
  ) {}
  emit(batch: Batch): void | Promise<void> {
    if (batch.rows.length === 0) return;
    this.metrics.recordsOut += batch.rows.length;
    return this.next(batch);
  }
}

export class OperatorChain {
  private readonly collectors: Collector[];
  watermark: number | null = null;

  constructor(
    readonly ops: ChainedOperator[],
    readonly emitter: EdgeEmitter,
  ) {
    this.collectors = [];
    for (let i = ops.length - 1; i >= 0; i--) {
      const nextIndex = i + 1;
      const next =
        nextIndex < ops.length ? (b: Batch) => this.feed(nextIndex, b) : (b: Batch) => this.emitter.emit(b);
      this.collectors[i] = new CountingCollector(ops[i]!.metrics, next);
    }
  }

  async open(ctxFor: (op: ChainedOperator) => Promise<OperatorContext>) {
    for (const op of this.ops) {
      const ctx = await ctxFor(op);
      op.state = ctx.state;
      await op.operator.open?.(ctx);
    }
  }

  /** Feeds a batch to the operator at `index`. */
  feed(index: number, batch: Batch, input = 0): void | Promise<void> {
    const op = this.ops[index]!;
    const m = op.metrics;
    m.recordsIn += batch.rows.length;
    m.batchesIn++;
    const now = performance.now();
    if (m.lastBatchAt !== 0 && now - m.lastBatchAt > m.longestGapMs) m.longestGapMs = now - m.lastBatchAt;
    m.lastBatchAt = now;
    return op.operator.process(batch, this.collectors[index]!, input);
  }

  /** `input` is which of the head operator's inputs the batch came from. */
  async push(batch: Batch, input = 0): Promise<void> {
    if (batch.rows.length === 0) return;
    if (this.ops.length === 0) return this.emitter.emit(batch);
    await this.feed(0, batch, input);
    this.maintain();
  }

  /** Between batches, where no operator holds state entries: disk tables write back what exceeds their cache. */
  private maintain(): void {
    for (const op of this.ops) op.state?.maintain();
  }

  /** Advances every operator's watermark in order, then tells downstream. */
  async advanceWatermark(time: number): Promise<void> {
    if (this.watermark !== null && time <= this.watermark) return;
    this.watermark = time;
    for (let i = 0; i < this.ops.length; i++) {
      const op = this.ops[i]!;
      op.metrics.watermark = time;
      op.metrics.idle = false;
      await op.operator.onWatermark?.(time, this.collectors[i]!);
    }
    this.maintain();
    await this.emitter.broadcast({ kind: "watermark", time });
  }

  /**
   * Every input ended (their watermarks reached the end of time) and the chain
   * has emitted what that flushed: its operators' tables need not be checkpointed again.
   */
  finish(): void {
    for (const op of this.ops) if (!op.keepsStateWhenFinished) op.state?.finish();
  }

  async markIdle(): Promise<void> {
    for (const op of this.ops) {
      op.metrics.idle = true;
      op.operator.onIdle?.();
    }
    await this.emitter.broadcast({ kind: "idle" });
  }

  /** At an aligned barrier: each operator prepares, then its state is snapshotted (tables encode in the background). */
  async snapshot(checkpointId: number): Promise<SubtaskSnapshot[]> {
    const out: SubtaskSnapshot[] = [];
    for (const op of this.ops) {
      await op.operator.prepareCheckpoint?.(checkpointId);
      const state = op.state!;
      out.push({ operatorId: op.stateId, index: state.subtaskIndex, parallelism: state.parallelism, state, snapshot: state.snapshot(checkpointId) });
      let entries = 0;
      for (const n of Object.values(state.sizes())) entries += n;
      op.metrics.stateEntries = entries;
    }
    return out;
  }

  async checkpointComplete(checkpointId: number): Promise<void> {
    for (const op of this.ops) await op.operator.onCheckpointComplete?.(checkpointId);
  }

  broadcast(msg: Message): Promise<void> {
    return this.emitter.broadcast(msg);
  }

  async close(): Promise<void> {
    for (const op of this.ops) {
      await op.operator.close?.();
      op.state?.close();
    }
  }
}
