/** Counters per operator and subtask, read by the CLI progress line and the control plane. */
import type { CompletedCheckpoint } from "../checkpoint/coordinator.ts";
import type { ConnectorMetrics } from "../plugin-api/index.ts";

export class OperatorMetrics {
  recordsIn = 0;
  recordsOut = 0;
  batchesIn = 0;
  /** Bytes of encoded records read by a source's format / written by a sink's format. */
  bytesIn = 0;
  bytesOut = 0;
  /** The subtask's current watermark (µs), or null before the first one. */
  watermark: number | null = null;
  idle = false;
  lateDropped = 0;
  badRecords = 0;
  backpressureMs = 0;
  /** Entries in the operator's keyed tables (this subtask), as of its last checkpoint. */
  stateEntries = 0;
  /** Bytes of the state files its last checkpoint needs to restore it (this subtask). */
  stateBytes = 0;
  /** The longest time between two batches reaching this operator since the metric was last reset (ms). */
  longestGapMs = 0;
  lastBatchAt = 0;
  /** What the operator's connector reports (ConnectorMetrics), by name. */
  connector: Record<string, number> = {};
  /** The worker process running this subtask (0 when the job runs in one process). */
  worker = 0;

  constructor(
    readonly operatorId: string,
    readonly operatorName: string,
    readonly subtaskIndex: number,
  ) {}
}

/** The ConnectorMetrics a connector of this operator subtask reports into. */
export function connectorMetrics(m: OperatorMetrics): ConnectorMetrics {
  const values = m.connector;
  return {
    add(name, n = 1) {
      values[name] = (values[name] ?? 0) + n;
    },
    set(name, value) {
      values[name] = value;
    },
  };
}

export class JobMetrics {
  readonly operators: OperatorMetrics[] = [];
  lastCheckpoint: CompletedCheckpoint | null = null;
  checkpointsCompleted = 0;
  checkpointsFailed = 0;
  lastCheckpointFailure: { id: number; at: number; reason: string } | null = null;

  register(m: OperatorMetrics): OperatorMetrics {
    this.operators.push(m);
    return m;
  }
}
