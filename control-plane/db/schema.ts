/**
 * The control plane's tables, as code (drizzle). `bun run db:generate` turns
 * changes here into a migration under migrations/; the server applies pending
 * migrations at start. Times are microseconds since the epoch (as in the API).
 */
import { sql } from "drizzle-orm";
import type { SealedSecrets } from "../security/secret-box.ts";
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, text, uniqueIndex } from "drizzle-orm/pg-core";

const micros = (name: string) => bigint(name, { mode: "number" });
const nowMicros = sql`(extract(epoch from clock_timestamp()) * 1000000)::bigint`;

export const pipelines = pgTable(
  "pipelines",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    query: text("query").notNull(),
    /** The query with secret option values replaced by '***': what the API shows (null for rows from before masking; filled at start). */
    maskedQuery: text("masked_query"),
    /** UDF names (from the udfs table) the query may call. */
    udfs: jsonb("udfs").$type<string[]>().notNull().default([]),
    parallelism: integer("parallelism").notNull().default(1),
    checkpointIntervalMicros: micros("checkpoint_interval_micros").notNull().default(10_000_000),
    /** Desired stop mode: 'none' while it should run. */
    stop: text("stop").notNull().default("none"),
    version: integer("version").notNull().default(1),
    createdAt: micros("created_at").notNull().default(nowMicros),
    updatedAt: micros("updated_at").notNull().default(nowMicros),
  },
  (t) => [index("pipelines_created_idx").on(t.createdAt, t.id)],
);

export const pipelineVersions = pgTable(
  "pipeline_versions",
  {
    pipelineId: text("pipeline_id").notNull().references(() => pipelines.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    query: text("query").notNull(),
    maskedQuery: text("masked_query"),
    parallelism: integer("parallelism").notNull(),
    checkpointIntervalMicros: micros("checkpoint_interval_micros").notNull(),
    createdAt: micros("created_at").notNull().default(nowMicros),
  },
  (t) => [primaryKey({ columns: [t.pipelineId, t.version] })],
);

export const jobs = pgTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    pipelineId: text("pipeline_id").notNull().references(() => pipelines.id, { onDelete: "cascade" }),
    /** Observed state (Created, Running, ...), as Arroyo names them. */
    state: text("state").notNull().default("Created"),
    /** Desired: whether the job should be running. */
    runningDesired: boolean("running_desired").notNull().default(true),
    /** Desired stop mode copied from the pipeline when it changes. */
    stopMode: text("stop_mode").notNull().default("none"),
    runId: integer("run_id").notNull().default(0),
    parallelism: integer("parallelism").notNull(),
    /** Parallelism the running worker uses; differs from `parallelism` while rescaling. */
    runningParallelism: integer("running_parallelism"),
    tasks: integer("tasks"),
    restarts: integer("restarts").notNull().default(0),
    /** A restart was asked for: stop with a checkpoint (if running) and start again. */
    restartRequested: boolean("restart_requested").notNull().default(false),
    /** Restart from scratch next time (restart with ignoreState). */
    ignoreState: boolean("ignore_state").notNull().default(false),
    failureMessage: text("failure_message"),
    startTime: micros("start_time"),
    finishTime: micros("finish_time"),
    /** The control-plane instance driving this job, and until when its claim holds. */
    owner: text("owner"),
    leaseUntil: micros("lease_until"),
    workerPid: integer("worker_pid"),
    /** Who the worker process is beyond its pid (boot id and start time from /proc), so a reused pid is never signalled. */
    workerIdentity: text("worker_identity"),
    /** Where each subtask of the running job is: stage/subtask → worker index, host, pid. */
    placement: jsonb("placement").$type<{ task: string; worker: number; host: string; pid: number }[]>(),
    /** Per preview writer, the newest checkpoint whose output was published (a restore re-commits it; it must not show twice). */
    outputPublished: jsonb("output_published").$type<Record<string, number>>().notNull().default({}),
    lastHeartbeat: micros("last_heartbeat"),
    createdAt: micros("created_at").notNull().default(nowMicros),
    updatedAt: micros("updated_at").notNull().default(nowMicros),
  },
  (t) => [index("jobs_pipeline_idx").on(t.pipelineId), index("jobs_lease_idx").on(t.runningDesired, t.leaseUntil)],
);

export const jobEvents = pgTable(
  "job_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    jobId: text("job_id").notNull().references(() => jobs.id, { onDelete: "cascade" }),
    at: micros("at").notNull().default(nowMicros),
    fromState: text("from_state"),
    toState: text("to_state").notNull(),
    reason: text("reason").notNull(),
  },
  (t) => [index("job_events_job_idx").on(t.jobId, t.id)],
);

export const checkpoints = pgTable(
  "checkpoints",
  {
    jobId: text("job_id").notNull().references(() => jobs.id, { onDelete: "cascade" }),
    checkpointId: integer("checkpoint_id").notNull(),
    runId: integer("run_id").notNull(),
    at: micros("at").notNull(),
    durationMicros: micros("duration_micros").notNull(),
    /** Part of the duration until every subtask had aligned its barrier and snapshotted; null for checkpoints recorded before it was measured. */
    alignmentMicros: micros("alignment_micros"),
    /** Bytes written to the checkpoint store, when it tells. */
    sizeBytes: bigint("size_bytes", { mode: "number" }),
    /** What followed the barrier: continue, stop, end. */
    then: text("then").notNull().default("continue"),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.checkpointId] })],
);

export const udfs = pgTable(
  "udfs",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    /** TypeScript/JavaScript module source whose default export is a defineUdf/defineUdaf/definePlugin value. */
    definition: text("definition").notNull(),
    description: text("description"),
    createdAt: micros("created_at").notNull().default(nowMicros),
  },
  (t) => [uniqueIndex("udfs_name_idx").on(t.name)],
);

export const connectionProfiles = pgTable(
  "connection_profiles",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    connector: text("connector").notNull(),
    /** Options shown back through the API. */
    config: jsonb("config").$type<Record<string, string>>().notNull().default({}),
    /**
     * Write-only options (passwords, keys): never returned, never logged, sealed
     * with AES-GCM ({ sealed, keys }, see security/secret-box.ts). Rows from
     * before sealing hold the plain object until the next start seals them.
     */
    secrets: jsonb("secrets").$type<SealedSecrets | Record<string, string>>().notNull().default({}),
    createdAt: micros("created_at").notNull().default(nowMicros),
  },
  (t) => [uniqueIndex("connection_profiles_name_idx").on(t.name)],
);

export const apiTokens = pgTable("api_tokens", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** SHA-256 of the token; the token itself is shown once, at creation. */
  hash: text("hash").notNull().unique(),
  /** admin, editor or viewer; tokens from before roles existed could do everything, so they became admins. */
  role: text("role").notNull().default("admin"),
  createdAt: micros("created_at").notNull().default(nowMicros),
});

/** The latest metrics of each running job, written by the instance driving it (read by the others). */
export const jobMetrics = pgTable("job_metrics", {
  jobId: text("job_id").primaryKey().references(() => jobs.id, { onDelete: "cascade" }),
  at: micros("at").notNull(),
  metrics: jsonb("metrics").notNull(),
});
