/**
 * The operator contract inside the engine (not part of the plugin API). A subtask
 * runs a chain of operators; each hands its output to the next through a Collector.
 */
import type { Batch } from "../plugin-api/index.ts";
import type { OperatorMetrics } from "../runtime/metrics.ts";

export interface Collector {
  emit(batch: Batch): void | Promise<void>;
}

export interface OperatorContext {
  subtaskIndex: number;
  parallelism: number;
  metrics: OperatorMetrics;
  jobId: string;
  signal: AbortSignal;
  log(message: string): void;
}

export interface Operator {
  readonly name: string;
  /**
   * `restored` holds this operator's state from every subtask of the restored
   * checkpoint (index = old subtask), so keyed operators can take the keys that
   * now hash to them when the parallelism changed.
   */
  open?(ctx: OperatorContext, restored: unknown[] | undefined): void | Promise<void>;
  /** `input` says which input a batch came from, for operators with two (joins: 0 left, 1 right). */
  process(batch: Batch, out: Collector, input: number): void | Promise<void>;
  /** The subtask's watermark advanced to `time` (µs). */
  onWatermark?(time: number, out: Collector): void | Promise<void>;
  /** State to store in checkpoint `checkpointId` (JSON-serialisable). */
  snapshot?(checkpointId: number): unknown | Promise<unknown>;
  /** Checkpoint `checkpointId` is durable; `state` is what snapshot returned for it. */
  onCheckpointComplete?(checkpointId: number, state: unknown): void | Promise<void>;
  close?(): void | Promise<void>;
}
