/** Messages between the control plane and a job's worker process (Bun IPC, JSON); the configuration goes on the worker's stdin. */

export interface WorkerConfig {
  jobId: string;
  runId: number;
  query: string;
  parallelism: number;
  /** The job's state directory (checkpoints); shared across runs so a restart restores. */
  stateDir: string;
  /** UDF modules to load before planning. */
  udfs: { name: string; definition: string }[];
  /** The connection profiles the pipeline's tables use, secrets included (the worker needs them; it never logs them). */
  profiles: Record<string, { connector: string; options: Record<string, string> }>;
  /** Values of the allowlisted variables the SQL names with `{{ VAR }}`. */
  env: Record<string, string>;
  /** The control plane's RUNNEL_ENV_ALLOWLIST (the worker refuses other names, as validation did). */
  envAllowlist: string[];
  /** Directories the pipeline may read and write local files in. */
  fileRoots: string[];
  /** Start from scratch: ignore checkpoints in the state directory. */
  ignoreState: boolean;
  /** Milliseconds between heartbeats (which carry metrics). */
  heartbeatMs: number;
  /** Worker processes to spread the subtasks over (1: all in this one); a pipeline with preview output runs in one. */
  workers: number;
  /** The scheduler plugin that starts them (process, kubernetes, external). */
  scheduler: string;
}

/** What a control-plane job's cluster workers need to plan as its process did (sent in the assignment, not the environment). */
export interface ClusterPlanHost {
  profiles: WorkerConfig["profiles"];
  envAllowlist: string[];
  fileRoots: string[];
}

/** Where a subtask runs: `task` is stage/subtask; worker 0 is the job's own process when it runs alone. */
export interface TaskPlacement {
  task: string;
  worker: number;
  host: string;
  pid: number;
}

export interface OperatorMetricsMessage {
  operatorId: string;
  operatorName: string;
  subtaskIndex: number;
  recordsIn: number;
  recordsOut: number;
  bytesIn: number;
  bytesOut: number;
  watermark: number | null;
  backpressureMs: number;
  lateDropped: number;
  badRecords: number;
  /** What the operator's connector reports (ConnectorMetrics), by name. */
  connector?: Record<string, number>;
  /** The worker process running the subtask (0 when the job runs in one process). */
  worker?: number;
  /** Entries in the subtask's keyed state and bytes its last checkpoint needs, as of that checkpoint. */
  stateEntries?: number;
  stateBytes?: number;
}

export type WorkerMessage =
  | { type: "planned"; tasks: number; graph: string }
  | { type: "running"; restoredCheckpoint: number | null; placement: TaskPlacement[] }
  | { type: "heartbeat"; metrics: OperatorMetricsMessage[] }
  /** The subtasks moved (the job manager restored the job on new worker processes). */
  | { type: "placement"; placement: TaskPlacement[] }
  | { type: "checkpoint"; checkpointId: number; at: number; durationMs: number; alignmentMs: number; bytes: number | null; then: string }
  /** Preview rows published by a completed checkpoint (exactly once per checkpoint id). */
  | { type: "output"; checkpointId: number; writer: number; lines: string[] }
  | { type: "finished" }
  | { type: "stopped"; checkpointId: number | null }
  | { type: "failed"; message: string; userError: boolean };

export type ControlMessage =
  | { type: "checkpoint" }
  /** checkpoint: final checkpoint then exit; immediate: exit now without one. */
  | { type: "stop"; mode: "checkpoint" | "immediate" };
