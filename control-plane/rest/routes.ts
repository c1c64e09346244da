/**
 * The REST API of the seed (/api/v1), as Arroyo 0.5 offered it: the same
 * services as GraphQL, JSON in and out, `{ data, hasMore }` lists,
 * microsecond timestamps.
 */
import { Hono } from "hono";
import * as catalog from "../services/catalog.ts";
import type { Services } from "../services/context.ts";
import { UserError } from "../services/errors.ts";
import * as pipelines from "../services/pipelines.ts";
import type { JobRow, PipelineRow } from "../services/pipelines.ts";
import { SandboxError } from "../jobs/sandbox.ts";
import { BodyError, onlyFields, readJsonBody } from "./json-body.ts";

export const pipelineJson = (services: Services, p: PipelineRow) => ({
  id: p.id,
  name: p.name,
  query: pipelines.shownQuery(services, p),
  udfs: p.udfs,
  parallelism: p.parallelism,
  checkpointIntervalMicros: p.checkpointIntervalMicros,
  stop: p.stop,
  version: p.version,
  createdAt: p.createdAt,
  updatedAt: p.updatedAt,
});

export const jobJson = (j: JobRow) => ({
  id: j.id,
  runningDesired: j.runningDesired,
  state: j.state,
  runId: j.runId,
  startTime: j.startTime,
  finishTime: j.finishTime,
  tasks: j.tasks,
  failureMessage: j.failureMessage,
  createdAt: j.createdAt,
});

function udfNames(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new UserError("udfs must be a list of UDF names", "invalid", { option: "udfs" });
  return value.map((u) => (typeof u === "string" ? u : (u as any)?.name)).filter((u) => u !== undefined);
}

export function restRoutes(services: Services): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof BodyError) return c.json({ error: err.message }, 400);
    if (err instanceof UserError) return c.json({ error: err.message, kind: err.kind, ...err.details }, err.httpStatus as 400);
    if (err instanceof SandboxError && err.busy) return c.json({ error: err.message }, 503);
    console.error(err);
    return c.json({ error: "internal error; the control plane's log has the details" }, 500);
  });

  app.post("/pipelines", async (c) => {
    const body = await readJsonBody(c.req.raw);
    onlyFields(body, ["name", "query", "parallelism", "checkpointIntervalMicros", "udfs", "preview"]);
    const { pipeline } = await pipelines.createPipeline(services, {
      name: body.name as string,
      query: body.query as string,
      parallelism: (body.parallelism as number | undefined) ?? 1,
      checkpointIntervalMicros: body.checkpointIntervalMicros as number | undefined,
      udfs: udfNames(body.udfs),
    });
    return c.json(pipelineJson(services, pipeline));
  });

  app.post("/pipelines/validate", async (c) => {
    const body = await readJsonBody(c.req.raw);
    onlyFields(body, ["query", "udfs", "parallelism"]);
    try {
      const v = await pipelines.validateQuery(services, body.query as string, body.udfs ? udfNames(body.udfs) : "all", (body.parallelism as number) ?? 1);
      return c.json({ valid: true, graph: v.graph, nodes: v.nodes, tasks: v.tasks, errors: [] });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return c.json({ valid: false, errors: [{ message: err.message, ...err.details }] });
    }
  });

  app.get("/pipelines", async (c) => {
    const limit = Number(c.req.query("limit") ?? 100);
    const after = c.req.query("starting_after");
    let cursor: { createdAt: number; id: string } | undefined;
    if (after) {
      const p = await pipelines.getPipeline(services, after);
      cursor = { createdAt: p.createdAt, id: p.id };
    }
    const { rows, hasMore } = await pipelines.listPipelines(services, Number.isFinite(limit) ? limit : 100, cursor);
    return c.json({ data: rows.map((p) => pipelineJson(services, p)), hasMore });
  });

  app.get("/pipelines/:id", async (c) => c.json(pipelineJson(services, await pipelines.getPipeline(services, c.req.param("id")))));

  app.patch("/pipelines/:id", async (c) => {
    const body = await readJsonBody(c.req.raw);
    onlyFields(body, ["stop", "parallelism", "checkpointIntervalMicros", "query", "ignoreState"]);
    const updated = await pipelines.updatePipeline(services, c.req.param("id"), body as pipelines.UpdatePipelineInput);
    return c.json(pipelineJson(services, updated));
  });

  app.post("/pipelines/:id/restart", async (c) => {
    const body = await readJsonBody(c.req.raw, { optional: true });
    onlyFields(body, ["ignoreState"]);
    return c.json(pipelineJson(services, await pipelines.restartPipeline(services, c.req.param("id"), body.ignoreState === true)));
  });

  app.delete("/pipelines/:id", async (c) => {
    await pipelines.deletePipeline(services, c.req.param("id"));
    return c.body(null, 204);
  });

  app.get("/pipelines/:id/jobs", async (c) => c.json({ data: (await pipelines.jobsOf(services, c.req.param("id"))).map(jobJson), hasMore: false }));

  // One job also says where its subtasks run (lists keep the fields Arroyo's API shows).
  app.get("/jobs/:id", async (c) => {
    const job = await pipelines.getJob(services, c.req.param("id"));
    return c.json({ ...jobJson(job), placement: job.placement });
  });
  app.get("/jobs/:id/checkpoints", async (c) => {
    await pipelines.getJob(services, c.req.param("id"));
    return c.json({ data: await pipelines.checkpointsOf(services, c.req.param("id")), hasMore: false });
  });
  app.get("/jobs/:id/events", async (c) => {
    await pipelines.getJob(services, c.req.param("id"));
    return c.json({ data: await pipelines.jobEventsOf(services, c.req.param("id")), hasMore: false });
  });

  app.get("/connectors", (c) => c.json({ data: catalog.connectors(services), hasMore: false }));
  return app;
}
