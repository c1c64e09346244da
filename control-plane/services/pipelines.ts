/**
 * Pipelines and their jobs: create (validated by planning the SQL), update,
 * stop/start/restart (desired state only — the supervisor moves the job), and
 * delete. GraphQL and REST both call these.
 */
import { and, asc, desc, eq, inArray, lt, or } from "drizzle-orm";
import { describeGraph, buildGraph } from "../../core/dataflow/graph.ts";
import { formatSqlError, planSql, SqlError } from "../../core/sql/index.ts";
import { parseStatements } from "../../core/sql/statements.ts";
import { buildTable } from "../../core/sql/tables.ts";
import { typeName } from "../../core/plugin-api/types.ts";
import type { TableDef } from "../../core/plan/logical.ts";
import type { PluginRegistry } from "../../core/registry/registry.ts";
import { jobEvents, jobs, checkpoints, pipelines, pipelineVersions, udfs as udfsTable, connectionProfiles } from "../db/schema.ts";
import { loadUdfs, UdfDefinitionError } from "../jobs/udf-modules.ts";
import type { Services } from "./context.ts";
import { notFound, UserError } from "./errors.ts";
import { topics } from "./events.ts";
import { newId, nowMicros } from "./ids.ts";
import { join } from "node:path";

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

/** A table of the query with its columns, for the console's completion. */
export interface QueryTable {
  name: string;
  connector: string | null;
  columns: { name: string; type: string }[];
}

export interface ValidatedQuery {
  graph: string;
  tasks: number;
  nodes: { id: string; label: string; parallelism: number; inputs: string[] }[];
  tables: QueryTable[];
}

function describeTable(table: TableDef): QueryTable {
  const fields = [...table.fields, ...table.virtual.map((v) => v.field)];
  return { name: table.name, connector: table.connector ?? null, columns: fields.map((f) => ({ name: f.name, type: typeName(f.type) })) };
}

/**
 * The tables a script declares, even when a later statement is wrong (so an
 * editor can still complete their columns); tables that don't build are left out.
 */
export async function tablesOfScript(services: Services, query: string): Promise<QueryTable[]> {
  const { registry, profiles } = await planningContext(services, "all").catch(() => ({ registry: services.registry, profiles: {} as Awaited<ReturnType<typeof loadProfiles>> }));
  let statements: ReturnType<typeof parseStatements>;
  try {
    statements = parseStatements(query);
  } catch {
    return [];
  }
  const out: QueryTable[] = [];
  for (const s of statements) {
    if (s.kind !== "create_table") continue;
    try {
      out.push(describeTable(buildTable(query, s, registry, { connectionProfile: (name) => profiles[name] })));
    } catch {
      // A table with a mistake: the diagnostics name it.
    }
  }
  return out;
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

/** A registry with the named UDFs loaded, and the connection profiles, for planning. */
async function planningContext(services: Services, udfNames: string[] | "all") {
  const registry: PluginRegistry = services.registry.clone();
  const rows = udfNames === "all" ? await services.db.select().from(udfsTable) : udfNames.length ? await services.db.select().from(udfsTable).where(inArray(udfsTable.name, udfNames)) : [];
  if (udfNames !== "all") {
    const missing = udfNames.filter((n) => !rows.some((r) => r.name === n));
    if (missing.length) throw new UserError(`unknown UDF ${missing.map((m) => `'${m}'`).join(", ")}; create it first (createUdf)`, "invalid", { option: "udfs" });
  }
  try {
    await loadUdfs(registry, rows, join(services.settings.dataDir, "udf-cache"));
  } catch (err) {
    if (err instanceof UdfDefinitionError) throw new UserError(err.message, "invalid", { option: "udfs" });
    throw err;
  }
  const profiles = await loadProfiles(services);
  return { registry, profiles, udfRows: rows };
}

export async function loadProfiles(services: Services) {
  const rows = await services.db.select().from(connectionProfiles);
  const out: Record<string, { connector: string; options: Record<string, string> }> = {};
  for (const r of rows) out[r.name] = { connector: r.connector, options: { ...r.config, ...r.secrets } };
  return out;
}

/** Plans the SQL; a mistake becomes a UserError with line and column. Environment references stay unresolved here. */
export async function validateQuery(services: Services, query: string, udfNames: string[] | "all" = "all", parallelism = 1): Promise<ValidatedQuery> {
  if (typeof query !== "string" || !query.trim()) throw new UserError("the query is empty; give the pipeline's SQL", "invalid", { option: "query" });
  const { registry, profiles } = await planningContext(services, udfNames);
  try {
    const plan = planSql(query, registry, { connectionProfile: (name) => profiles[name] });
    const graph = buildGraph(plan, {
      parallelism,
      sinkMaxParallelism: (table) => (table?.connector ? registry.connector(table.connector)?.sink?.maxParallelism : undefined),
    });
    return {
      graph: describeGraph(graph),
      tasks: graph.stages.reduce((n, s) => n + s.parallelism, 0),
      nodes: graph.nodes.map((n) => ({ id: n.id, label: n.label, parallelism: n.parallelism, inputs: n.inputs.map((i) => i.id) })),
      tables: [...plan.tables.values()].map(describeTable),
    };
  } catch (err) {
    if (err instanceof SqlError) {
      const pos = err.position(query);
      throw new UserError(formatSqlError(err, query), err.option ? "option" : "sql", { line: pos?.line, column: pos?.column, option: err.option });
    }
    throw new UserError(`the query cannot be planned: ${(err as Error).message}`, "sql");
  }
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
      .values({ id: pipelineId, name: input.name, query: input.query, udfs: udfNames, parallelism, checkpointIntervalMicros: interval, createdAt: now, updatedAt: now })
      .returning();
    await tx.insert(pipelineVersions).values({ pipelineId, version: 1, query: input.query, parallelism, checkpointIntervalMicros: interval, createdAt: now });
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
  const versionChanged = patch.parallelism !== undefined || patch.checkpointIntervalMicros !== undefined;
  const updated = await services.db.transaction(async (tx) => {
    if (versionChanged) patch.version = current.version + 1;
    const [row] = await tx.update(pipelines).set(patch).where(eq(pipelines.id, id)).returning();
    if (versionChanged) {
      await tx.insert(pipelineVersions).values({
        pipelineId: id,
        version: row!.version,
        query: row!.query,
        parallelism: row!.parallelism,
        checkpointIntervalMicros: row!.checkpointIntervalMicros,
      });
    }
    const jobPatch: Partial<JobRow> = { updatedAt: nowMicros() };
    if (patch.parallelism !== undefined) jobPatch.parallelism = patch.parallelism;
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
