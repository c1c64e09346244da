/**
 * What a job manager and its workers say to each other (control frames). The
 * manager plans the job, places subtasks, runs the checkpoint coordinator and
 * writes manifests; workers run subtasks, exchange data among themselves and
 * write their own state files.
 */
import type { SubtaskCheckpoint } from "../checkpoint/store.ts";
import type { BarrierThen } from "../checkpoint/coordinator.ts";

/** A worker's view of the job it runs part of. */
export interface Assignment {
  epoch: number;
  index: number;
  /** The pipeline's SQL and what planning it needs, so every worker plans the same graph. */
  sql: string;
  plan: {
    env?: Record<string, string>;
    udfs?: { name: string; definition: string }[];
    /** What the program running the job manager hands its own workers' `prepare` (a control plane: profiles, file roots); opaque here. */
    host?: unknown;
  };
  job: {
    jobId: string;
    parallelism: number;
    stateDir: string;
    maxParallelism: number;
    stateBackend?: "memory" | "disk";
    stateCacheBytes?: number;
    channelCapacity?: number;
    /** JobOptions.combine: every worker must plan the same combiners. */
    combine?: boolean;
    /** JobOptions.startTimeMicros: the manager's, so every worker's sources agree on "now". */
    startTimeMicros?: number;
  };
  /** The checkpoint to restore, or null for a fresh start. */
  restoredCheckpointId: number | null;
  /** Stage id → the worker each subtask runs on. */
  placement: Record<string, number[]>;
  /** Worker index → its exchange address. */
  peers: string[];
}

export interface OperatorMetricsReport {
  operatorId: string;
  operatorName: string;
  subtaskIndex: number;
  recordsIn: number;
  recordsOut: number;
  batchesIn: number;
  bytesIn: number;
  bytesOut: number;
  watermark: number | null;
  idle: boolean;
  lateDropped: number;
  badRecords: number;
  backpressureMs: number;
  stateEntries: number;
  stateBytes: number;
  longestGapMs: number;
  connector: Record<string, number>;
}

export type WorkerMessage =
  | { type: "hello"; secret: string; epoch: number | null; index: number | null; exchange: string; host: string; pid: number }
  /** Every subtask is open (state restored) and its outgoing connections are being made. */
  | { type: "ready" }
  | { type: "ack"; task: string; checkpointId: number; parts: { operatorId: string; index: number; part: SubtaskCheckpoint; bytes: number }[] }
  | { type: "ack-failed"; task: string; checkpointId: number; error: string }
  | { type: "committed"; checkpointId: number }
  | { type: "source-finished"; task: string }
  | { type: "metrics"; operators: OperatorMetricsReport[]; rssBytes: number; cpuMicros: number }
  | { type: "failed"; error: string }
  /** Every subtask of this worker has ended. */
  | { type: "done" };

export type ManagerMessage =
  | { type: "assign"; assignment: Assignment }
  | { type: "barrier"; task: string; checkpointId: number; then: BarrierThen }
  | { type: "complete"; checkpointId: number }
  | { type: "abort"; reason: string }
  | { type: "exit" };
