/**
 * The operator contract inside the engine (not part of the plugin API). A subtask
 * runs a chain of operators; each hands its output to the next through a Collector.
 */
import type { Batch } from "../plugin-api/index.ts";
import type { OperatorMetrics } from "../runtime/metrics.ts";
import type { OperatorState } from "../state/operator-state.ts";

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
  /** Where the operator declares its state (restored already when restoring). */
  state: OperatorState;
}

export interface Operator {
  readonly name: string;
  /** Declares state (through ctx.state, which holds what a restore brought back) and sets up. */
  open?(ctx: OperatorContext): void | Promise<void>;
  /** `input` says which input a batch came from, for operators with two (joins: 0 left, 1 right). */
  process(batch: Batch, out: Collector, input: number): void | Promise<void>;
  /** The subtask's watermark advanced to `time` (µs). */
  onWatermark?(time: number, out: Collector): void | Promise<void>;
  /** The subtask told downstream it is idle: they may advance their watermarks without it. */
  onIdle?(): void;
  /** At a barrier, before the state backend snapshots: e.g. a sink stages what it wrote. */
  prepareCheckpoint?(checkpointId: number): void | Promise<void>;
  /** Checkpoint `checkpointId` is durable. */
  onCheckpointComplete?(checkpointId: number): void | Promise<void>;
  close?(): void | Promise<void>;
}
