/**
 * Pipelines and their jobs: create (validated by planning the SQL), update,
 * stop/start/restart (desired state only — the supervisor moves the job), and
 * delete. GraphQL and REST both call these.
 */
import { and, asc, desc, eq, inArray, isNull, lt, or } from "drizzle-orm";
import { parseStatements } from "../../core/sql/statements.ts";
import { childLocation } from "../../core/checkpoint/store.ts";
import { checkpointStoreFor } from "../../core/dataflow/job.ts";
import { incompatibility } from "../../core/dataflow/fingerprint.ts";
import { jobEvents, jobs, checkpoints, pipelines, pipelineVersions, udfs as udfsTable, connectionProfiles } from "../db/schema.ts";
import { SandboxError, type QueryTable, type ValidationResult } from "../jobs/sandbox.ts";
import { maskQuery } from "../security/redact.ts";
import type { Services } from "./context.ts";
import { notFound, UserError } from "./errors.ts";
import { topics } from "./events.ts";
import { newId, nowMicros } from "./ids.ts";

export const STOP_MODES = ["none", "checkpoint", "graceful", "immediate", "force"] as const;
export type StopMode = (typeof STOP_MODES)[number];

export type PipelineRow = typeof pipelines.$inferSelect;
export type JobRow = typeof jobs.$inferSelect;

export interface CreatePipelineInput {
  name: string;
  query: string;
  parallelism?: number;
  checkpointIntervalMicros?: number;
  udfs?: string[];
}

export type ValidatedQuery = ValidationResult;
export type { QueryTable };

/** A query that does not validate; `tables` are those of its tables that do build (for completion). */
export class InvalidQueryError extends UserError {
  constructor(
    message: string,
    kind: UserError["kind"],
    details: UserError["details"],
    readonly tables: QueryTable[],
  ) {
    super(message, kind, details);
  }
}

function checkParallelism(p: unknown): number {
  if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 1024) {
    throw new UserError(`parallelism must be a whole number from 1 to 1024, got ${JSON.stringify(p)}`, "invalid", { option: "parallelism" });
  }
  return p as number;
}

function checkInterval(micros: unknown): number {
  if (!Number.isInteger(micros) || (micros as number) < 100_000) {
    throw new UserError(`checkpointIntervalMicros must be at least 100000 (0.1 s), got ${JSON.stringify(micros)}`, "invalid", { option: "checkpointIntervalMicros" });
  }
  return micros as number;
}

/** The query as the API shows it: secret option values masked (rows from before masking are masked on the fly until the next start fills them in). */
export const shownQuery = (services: Services, row: { query: string; maskedQuery: string | null }) => row.maskedQuery ?? maskQuery(row.query, services.registry).masked;

/** Connection profiles with their secrets opened: those `wanted` names (all when absent). */
export async function loadProfiles(services: Services, wanted?: (name: string) => boolean) {
  const rows = await services.db.select().from(connectionProfiles);
  const out: Record<string, { connector: string; options: Record<string, string> }> = {};
  for (const r of rows) {
    if (wanted && !wanted(r.name)) continue;
    out[r.name] = { connector: r.connector, options: { ...r.config, ...(await services.secrets.unseal(r.secrets, `profile:${r.id}`)) } };
  }
  return out;
}

/** Names of the connection profiles the query's tables use, read from its CREATE TABLE options. */
export function profileNamesOf(query: string): string[] {
  try {
    return parseStatements(query).flatMap((s) => (s.kind === "create_table" ? s.options.filter((o) => o.key === "connection_profile").map((o) => o.value) : []));
  } catch {
    return [];
  }
}

/** The UDF rows named (all of them for "all"); unknown names are an error. */
async function udfRows(services: Services, udfNames: string[] | "all") {
  const rows = udfNames === "all" ? await services.db.select().from(udfsTable) : udfNames.length ? await services.db.select().from(udfsTable).where(inArray(udfsTable.name, udfNames)) : [];
  if (udfNames !== "all") {
    const missing = udfNames.filter((n) => !rows.some((r) => r.name === n));
    if (missing.length) throw new UserError(`unknown UDF ${missing.map((m) => `'${m}'`).join(", ")}; create it first (createUdf)`, "invalid", { option: "udfs" });
  }
  return rows;
}

export function checkQuerySize(services: Services, query: unknown): string {
  if (typeof query !== "string" || !query.trim()) throw new UserError("the query is empty; give the pipeline's SQL", "invalid", { option: "query" });
  const bytes = Buffer.byteLength(query);
  const max = services.settings.maxSqlBytes;
  if (bytes > max) {
    throw new UserError(`the query is ${bytes} bytes; this control plane takes queries of at most ${max} bytes (RUNNEL_MAX_SQL_BYTES)`, "invalid", { option: "query" });
  }
  return query;
}

/** A sandbox that gave up (time, memory) is the query's fault; one that is overloaded is not, and says so. */
export function sandboxFailure(err: unknown, option: string): never {
  if (err instanceof SandboxError && !err.busy) throw new UserError(err.message, "invalid", { option });
  throw err;
}

/**
 * Plans the SQL in the sandbox (a child process: UDF code runs there, and a
 * slow plan does not hold up the control plane); a mistake becomes a
 * UserError with line and column. Environment references stay unresolved
 * here, but naming one the allowlist refuses is an error already.
 */
export async function validateQuery(services: Services, query: string, udfNames: string[] | "all" = "all", parallelism = 1): Promise<ValidatedQuery> {
  checkQuerySize(services, query);
  const udfs = (await udfRows(services, udfNames)).map((u) => ({ name: u.name, definition: u.definition }));
  // Only profiles the query may name travel to the sandbox, where UDF code runs.
  const profiles = await loadProfiles(services, (name) => query.includes(`'${name.replaceAll("'", "''")}'`));
  const { settings } = services;
  const response = await services.sandbox
    .run(
      { kind: "validate", query, udfs, profiles, parallelism, fileRoots: settings.fileRoots, envAllowlist: settings.envAllowlist },
      udfs.length > 0,
    )
    .catch((err) => sandboxFailure(err, "query"));
  if (!response.ok) {
    const e = response.error;
    if (e.kind === "internal") throw new Error(e.message);
    throw new InvalidQueryError(e.message, e.kind, { line: e.line, column: e.column, option: e.option }, response.tables ?? []);
  }
  return response.result as ValidationResult;
}

export async function createPipeline(services: Services, input: CreatePipelineInput): Promise<{ pipeline: PipelineRow; job: JobRow }> {
  if (typeof input.name !== "string" || !input.name.trim()) throw new UserError("name is required: give the pipeline a name", "invalid", { option: "name" });
  const parallelism = checkParallelism(input.parallelism ?? 1);
  const interval = checkInterval(input.checkpointIntervalMicros ?? 10_000_000);
  const udfNames = input.udfs ?? [];
  if (!Array.isArray(udfNames) || udfNames.some((u) => typeof u !== "string")) {
    throw new UserError("udfs must be a list of UDF names", "invalid", { option: "udfs" });
  }
  const validated = await validateQuery(services, input.query, udfNames, parallelism);
  const pipelineId = newId("pl");
  const jobId = newId("job");
  const now = nowMicros();
  const { pipeline, job } = await services.db.transaction(async (tx) => {
    const [pipeline] = await tx
      .insert(pipelines)
      .values({ id: pipelineId, name: input.name, query: input.query, maskedQuery: validated.maskedQuery, udfs: udfNames, parallelism, checkpointIntervalMicros: interval, createdAt: now, updatedAt: now })
      .returning();
    await tx
      .insert(pipelineVersions)
      .values({ pipelineId, version: 1, query: input.query, maskedQuery: validated.maskedQuery, parallelism, checkpointIntervalMicros: interval, createdAt: now });
    const [job] = await tx
      .insert(jobs)
      .values({ id: jobId, pipelineId, parallelism, tasks: validated.tasks, state: "Created", runningDesired: true, createdAt: now, updatedAt: now })
      .returning();
    await tx.insert(jobEvents).values({ jobId, toState: "Created", reason: "pipeline created", at: now });
    return { pipeline: pipeline!, job: job! };
  });
  await services.events.publish(topics.pipelineJobs(pipelineId), job);
  return { pipeline, job };
}

export async function getPipeline(services: Services, id: string): Promise<PipelineRow> {
  const [row] = await services.db.select().from(pipelines).where(eq(pipelines.id, id));
  if (!row) throw notFound("pipeline", id);
  return row;
}

/** Newest first; the cursor is the last row's (createdAt, id), so pages stay stable while pipelines are added. */
export async function listPipelines(services: Services, first: number, after?: { createdAt: number; id: string }) {
  const limit = Math.max(1, Math.min(first, 1000));
  const where = after ? or(lt(pipelines.createdAt, after.createdAt), and(eq(pipelines.createdAt, after.createdAt), lt(pipelines.id, after.id))) : undefined;
  const rows = await services.db.select().from(pipelines).where(where).orderBy(desc(pipelines.createdAt), desc(pipelines.id)).limit(limit + 1);
  return { rows: rows.slice(0, limit), hasMore: rows.length > limit };
}

export async function jobsOf(services: Services, pipelineId: string): Promise<JobRow[]> {
  await getPipeline(services, pipelineId);
  return services.db.select().from(jobs).where(eq(jobs.pipelineId, pipelineId)).orderBy(desc(jobs.createdAt));
}

export async function getJob(services: Services, id: string): Promise<JobRow> {
  const [row] = await services.db.select().from(jobs).where(eq(jobs.id, id));
  if (!row) throw notFound("job", id);
  return row;
}

export async function jobEventsOf(services: Services, jobId: string) {
  return services.db.select().from(jobEvents).where(eq(jobEvents.jobId, jobId)).orderBy(asc(jobEvents.id));
}

export async function checkpointsOf(services: Services, jobId: string) {
  return services.db.select().from(checkpoints).where(eq(checkpoints.jobId, jobId)).orderBy(desc(checkpoints.checkpointId));
}

export interface UpdatePipelineInput {
  parallelism?: number;
  checkpointIntervalMicros?: number;
  stop?: StopMode;
  /** A new query: the running job takes a checkpoint and restarts with it, keeping the state of the operators that did not change. */
  query?: string;
  /** With a new query: start from scratch instead (needed when the edit changes an operator that holds state). */
  ignoreState?: boolean;
}

/**
 * Why a job's latest checkpoint cannot be restored into a pipeline with these
 * operator identities (an operator holding state changed or went), or null.
 */
async function queryEditConflict(services: Services, jobId: string, identities: ValidationResult["identities"]): Promise<string | null> {
  const store = checkpointStoreFor(childLocation(services.settings.checkpointDir, jobId), services.registry);
  const latest = await store.latest();
  if (!latest) return null;
  const mismatch = incompatibility(latest.labels, identities);
  return mismatch ? `checkpoint ${latest.checkpointId} of job ${jobId}: ${mismatch}` : null;
}

/** Changes what the pipeline should be; the supervisor makes the job follow (rescale, stop, start). */
export async function updatePipeline(services: Services, id: string, input: UpdatePipelineInput): Promise<PipelineRow> {
  const current = await getPipeline(services, id);
  const patch: Partial<PipelineRow> = { updatedAt: nowMicros() };
  if (input.parallelism !== undefined) patch.parallelism = checkParallelism(input.parallelism);
  if (input.checkpointIntervalMicros !== undefined) patch.checkpointIntervalMicros = checkInterval(input.checkpointIntervalMicros);
  if (input.stop !== undefined) {
    if (!STOP_MODES.includes(input.stop)) {
      throw new UserError(`stop must be one of ${STOP_MODES.join(", ")}, got ${JSON.stringify(input.stop)}`, "invalid", { option: "stop" });
    }
    patch.stop = input.stop;
  }
  let restartForQuery = false;
  if (input.query !== undefined && input.query !== current.query) {
    if (typeof input.query !== "string") throw new UserError("query must be SQL text", "invalid", { option: "query" });
    const validated = await validateQuery(services, input.query, current.udfs, patch.parallelism ?? current.parallelism);
    if (!input.ignoreState) {
      for (const job of await services.db.select().from(jobs).where(eq(jobs.pipelineId, id))) {
        const conflict = await queryEditConflict(services, job.id, validated.identities);
        if (conflict) {
          throw new UserError(
            `the new query cannot keep the job's state (${conflict}, so its saved state would be read with another meaning). ` +
              `Keep that operator as it was, or update with ignoreState: true to start the job from scratch with the new query`,
            "conflict",
            { option: "query" },
          );
        }
      }
    }
    patch.query = input.query;
    patch.maskedQuery = validated.maskedQuery;
    restartForQuery = true;
  }
  const versionChanged = patch.parallelism !== undefined || patch.checkpointIntervalMicros !== undefined || restartForQuery;
  const updated = await services.db.transaction(async (tx) => {
    if (versionChanged) patch.version = current.version + 1;
    const [row] = await tx.update(pipelines).set(patch).where(eq(pipelines.id, id)).returning();
    if (versionChanged) {
      await tx.insert(pipelineVersions).values({
        pipelineId: id,
        version: row!.version,
        query: row!.query,
        maskedQuery: row!.maskedQuery,
        parallelism: row!.parallelism,
        checkpointIntervalMicros: row!.checkpointIntervalMicros,
      });
    }
    const jobPatch: Partial<JobRow> = { updatedAt: nowMicros() };
    if (patch.parallelism !== undefined) jobPatch.parallelism = patch.parallelism;
    // The job restarts from a fresh checkpoint with the new query (the worker plans the pipeline's query when it starts).
    if (restartForQuery) {
      jobPatch.restartRequested = true;
      jobPatch.ignoreState = input.ignoreState === true;
    }
    if (patch.stop !== undefined) {
      jobPatch.stopMode = patch.stop;
      jobPatch.runningDesired = patch.stop === "none";
      if (patch.stop === "none") jobPatch.restarts = 0;
    }
    await tx.update(jobs).set(jobPatch).where(eq(jobs.pipelineId, id));
    return row!;
  });
  await services.events.publish(topics.pipelines, { id });
  return updated;
}

/** Stops (with a checkpoint) and starts again; `ignoreState` starts from scratch. */
export async function restartPipeline(services: Services, id: string, ignoreState = false): Promise<PipelineRow> {
  await getPipeline(services, id);
  await services.db
    .update(jobs)
    .set({ restartRequested: true, ignoreState, runningDesired: true, stopMode: "none", restarts: 0, updatedAt: nowMicros() })
    .where(eq(jobs.pipelineId, id));
  const [pipeline] = await services.db.update(pipelines).set({ stop: "none", updatedAt: nowMicros() }).where(eq(pipelines.id, id)).returning();
  return pipeline!;
}

export async function deletePipeline(services: Services, id: string): Promise<PipelineRow> {
  const pipeline = await getPipeline(services, id);
  const ofPipeline = await services.db.select().from(jobs).where(eq(jobs.pipelineId, id));
  const active = ofPipeline.filter((j) => !["Stopped", "Finished", "Failed", "Created"].includes(j.state) || j.workerPid);
  if (active.length > 0) {
    throw new UserError(
      `pipeline '${id}' still has a running job (${active[0]!.id}, ${active[0]!.state}); stop it first (stop: "checkpoint" or "immediate"), then delete`,
      "conflict",
      { id },
    );
  }
  await services.db.delete(pipelines).where(eq(pipelines.id, id));
  return pipeline;
}

/** Fills in the masked query of pipelines (and versions) stored before masking existed. Runs at start; returns how many it filled. */
export async function maskStoredQueries(services: Services): Promise<number> {
  let filled = 0;
  for (const p of await services.db.select({ id: pipelines.id, query: pipelines.query }).from(pipelines).where(isNull(pipelines.maskedQuery))) {
    await services.db.update(pipelines).set({ maskedQuery: maskQuery(p.query, services.registry).masked }).where(eq(pipelines.id, p.id));
    filled++;
  }
  const versions = await services.db
    .select({ pipelineId: pipelineVersions.pipelineId, version: pipelineVersions.version, query: pipelineVersions.query })
    .from(pipelineVersions)
    .where(isNull(pipelineVersions.maskedQuery));
  for (const v of versions) {
    await services.db
      .update(pipelineVersions)
      .set({ maskedQuery: maskQuery(v.query, services.registry).masked })
      .where(and(eq(pipelineVersions.pipelineId, v.pipelineId), eq(pipelineVersions.version, v.version)));
  }
  return filled;
}
