/** Thin resolvers: each calls a service and maps user errors to the typed error results. */
import { GraphQLError, GraphQLScalarType, Kind } from "graphql";
import { eq } from "drizzle-orm";
import { jobMetrics as jobMetricsTable, pipelineVersions } from "../db/schema.ts";
import * as catalog from "../services/catalog.ts";
import type { Services } from "../services/context.ts";
import { UserError } from "../services/errors.ts";
import { topics } from "../services/events.ts";
import * as pipelines from "../services/pipelines.ts";
import * as profiles from "../services/profiles.ts";
import * as tokens from "../services/tokens.ts";
import * as udfs from "../services/udfs.ts";
import type { Supervisor } from "../jobs/supervisor.ts";
import { SandboxError } from "../jobs/sandbox.ts";
import { allows, forbiddenMessage, type Caller, type Role } from "../security/roles.ts";

export interface GraphQLContext {
  services: Services;
  supervisor: Supervisor;
  tokens: tokens.TokenCheck;
  /** Who is calling; set for each operation from its token. */
  caller?: Caller;
}

/**
 * The role each root field needs. Queries and subscriptions not listed need
 * a viewer; mutations not listed need an admin, so a new mutation is closed
 * until someone decides otherwise.
 */
const NEEDS: Record<"Query" | "Mutation" | "Subscription", Record<string, Role>> = {
  Query: { validateQuery: "editor", apiTokens: "admin" },
  Mutation: {
    createPipeline: "editor",
    updatePipeline: "editor",
    stopPipeline: "editor",
    startPipeline: "editor",
    restartPipeline: "editor",
    deletePipeline: "editor",
    createUdf: "editor",
    deleteUdf: "editor",
    createConnectionProfile: "admin",
    deleteConnectionProfile: "admin",
    createApiToken: "admin",
    deleteApiToken: "admin",
  },
  Subscription: {},
};

export function neededRole(type: keyof typeof NEEDS, field: string): Role {
  return NEEDS[type][field] ?? (type === "Mutation" ? "admin" : "viewer");
}

function checkRole(ctx: GraphQLContext, type: keyof typeof NEEDS, field: string): void {
  const needed = neededRole(type, field);
  if (!ctx.caller) throw new GraphQLError("the caller is unknown; send 'Authorization: Bearer <token>'", { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
  if (!allows(ctx.caller, needed)) {
    const what = type === "Query" ? "the query" : type === "Mutation" ? "the mutation" : "the subscription";
    throw new GraphQLError(forbiddenMessage(ctx.caller, needed, `${what} ${field}`), { extensions: { code: "FORBIDDEN", http: { status: 403 } } });
  }
}

/** Every root field checks the caller's role before it runs (aliases and fragments cannot get around a field-level check). */
function guarded<R extends Record<string, any>>(type: keyof typeof NEEDS, fields: R): R {
  const out: Record<string, any> = {};
  for (const [field, r] of Object.entries(fields)) {
    out[field] =
      typeof r === "function"
        ? (parent: unknown, args: unknown, ctx: GraphQLContext, info: unknown) => {
            checkRole(ctx, type, field);
            return r(parent, args, ctx, info);
          }
        : {
            ...r,
            subscribe: (parent: unknown, args: unknown, ctx: GraphQLContext, info: unknown) => {
              checkRole(ctx, type, field);
              return r.subscribe(parent, args, ctx, info);
            },
          };
  }
  return out as R;
}

/** A user error as the matching member of a mutation's result union. */
function asResult(err: unknown) {
  if (err instanceof SandboxError && err.busy) throw new GraphQLError(err.message, { extensions: { code: "SERVICE_UNAVAILABLE", http: { status: 503 } } });
  if (!(err instanceof UserError)) throw err;
  switch (err.kind) {
    case "sql":
      return { __typename: "SqlError", message: err.message, line: err.details.line ?? null, column: err.details.column ?? null };
    case "option":
    case "invalid":
      return { __typename: "OptionError", message: err.message, option: err.details.option ?? "input", line: err.details.line ?? null, column: err.details.column ?? null };
    case "not_found":
      return { __typename: "NotFoundError", message: err.message, id: err.details.id ?? "" };
    case "conflict":
      return { __typename: "ConflictError", message: err.message };
  }
}

async function result<T>(work: () => Promise<T>, wrap: (v: T) => Record<string, unknown>) {
  try {
    return wrap(await work());
  } catch (err) {
    return asResult(err);
  }
}

/** Yields `initial` values, then every event on `topic` until the client goes away. */
async function* stream<T>(services: Services, topic: string, initial: T[], map: (payload: any) => T | null): AsyncGenerator<T> {
  const queue: T[] = [...initial];
  let wake: (() => void) | null = null;
  const unsubscribe = services.events.subscribe(topic, (payload) => {
    const v = map(payload);
    if (v === null) return;
    queue.push(v);
    wake?.();
  });
  try {
    while (true) {
      while (queue.length) yield queue.shift()!;
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
  } finally {
    unsubscribe();
  }
}

const encodeCursor = (p: { createdAt: number; id: string }) => Buffer.from(JSON.stringify([p.createdAt, p.id])).toString("base64url");
function decodeCursor(cursor: string) {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString());
    if (typeof createdAt === "number" && typeof id === "string") return { createdAt, id };
  } catch {}
  throw new GraphQLError(`'after' is not a cursor this API gave out: ${cursor}`, { extensions: { code: "BAD_USER_INPUT" } });
}

const Micros = new GraphQLScalarType({
  name: "Micros",
  serialize: (v) => (typeof v === "string" ? Number(v) : v),
  parseValue: (v) => {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new GraphQLError("Micros must be a number of microseconds");
    return v;
  },
  parseLiteral: (ast) => {
    if (ast.kind === Kind.INT || ast.kind === Kind.FLOAT) return Number(ast.value);
    throw new GraphQLError("Micros must be a number of microseconds");
  },
});

const JSONScalar = new GraphQLScalarType({
  name: "JSON",
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: function literal(ast): unknown {
    switch (ast.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return ast.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(ast.value);
      case Kind.OBJECT:
        return Object.fromEntries(ast.fields.map((f) => [f.name.value, literal(f.value)]));
      case Kind.LIST:
        return ast.values.map((v) => literal(v));
      default:
        return null;
    }
  },
});

async function metricsOf(ctx: GraphQLContext, jobId: string) {
  const live = ctx.supervisor.metrics.get(jobId);
  if (live) return { jobId, at: live.at, operators: live.operators };
  const [row] = await ctx.services.db.select().from(jobMetricsTable).where(eq(jobMetricsTable.jobId, jobId));
  return row ? { jobId, at: row.at, operators: row.metrics } : null;
}

export const resolvers = {
  Micros,
  JSON: JSONScalar,
  Role: { ADMIN: "admin", EDITOR: "editor", VIEWER: "viewer" },
  UserError: { __resolveType: (o: any) => o.__typename },
  PipelineResult: { __resolveType: (o: any) => o.__typename },
  UdfResult: { __resolveType: (o: any) => o.__typename },
  ConnectionProfileResult: { __resolveType: (o: any) => o.__typename },
  DeleteResult: { __resolveType: (o: any) => o.__typename },

  Query: guarded("Query", {
    viewer: (_: unknown, __: unknown, ctx: GraphQLContext) => ({ name: ctx.caller!.name, role: ctx.caller!.role }),
    apiTokens: (_: unknown, __: unknown, ctx: GraphQLContext) => tokens.listTokens(ctx.services.db),
    async pipelines(_: unknown, args: { first: number; after?: string }, ctx: GraphQLContext) {
      const { rows, hasMore } = await pipelines.listPipelines(ctx.services, args.first, args.after ? decodeCursor(args.after) : undefined);
      const edges = rows.map((node) => ({ cursor: encodeCursor(node), node }));
      return {
        edges,
        pageInfo: { hasNextPage: hasMore, hasPreviousPage: !!args.after, startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
    pipeline: (_: unknown, { id }: { id: string }, ctx: GraphQLContext) => pipelines.getPipeline(ctx.services, id).catch(() => null),
    job: (_: unknown, { id }: { id: string }, ctx: GraphQLContext) => pipelines.getJob(ctx.services, id).catch(() => null),
    connectors: (_: unknown, __: unknown, ctx: GraphQLContext) => catalog.connectors(ctx.services),
    formats: (_: unknown, __: unknown, ctx: GraphQLContext) => catalog.formats(ctx.services),
    functions: (_: unknown, __: unknown, ctx: GraphQLContext) => catalog.functions(ctx.services),
    udfs: (_: unknown, __: unknown, ctx: GraphQLContext) => udfs.listUdfs(ctx.services),
    connectionProfiles: (_: unknown, __: unknown, ctx: GraphQLContext) => profiles.listProfiles(ctx.services),
    async validateQuery(_: unknown, args: { sql: string; udfs?: string[]; parallelism?: number }, ctx: GraphQLContext) {
      try {
        const v = await pipelines.validateQuery(ctx.services, args.sql, args.udfs ?? "all", args.parallelism ?? 1);
        return { valid: true, graph: v.graph, nodes: v.nodes, tasks: v.tasks, tables: v.tables, diagnostics: [] };
      } catch (err) {
        if (!(err instanceof UserError)) return asResult(err);
        return {
          valid: false,
          graph: null,
          nodes: null,
          tasks: null,
          tables: err instanceof pipelines.InvalidQueryError ? err.tables : [],
          diagnostics: [{ message: err.message, line: err.details.line ?? null, column: err.details.column ?? null, option: err.details.option ?? null }],
        };
      }
    },
  }),

  Pipeline: {
    query: (p: pipelines.PipelineRow, _: unknown, ctx: GraphQLContext) => pipelines.shownQuery(ctx.services, p),
    jobs: (p: { id: string }, _: unknown, ctx: GraphQLContext) => pipelines.jobsOf(ctx.services, p.id),
    versions: (p: { id: string }, _: unknown, ctx: GraphQLContext) =>
      ctx.services.db.select().from(pipelineVersions).where(eq(pipelineVersions.pipelineId, p.id)).orderBy(pipelineVersions.version),
  },

  // Metrics stored before these fields existed lack them.
  OperatorMetrics: {
    stateEntries: (m: { stateEntries?: number }) => m.stateEntries ?? 0,
    stateBytes: (m: { stateBytes?: number }) => m.stateBytes ?? 0,
    worker: (m: { worker?: number }) => m.worker ?? 0,
  },

  Job: {
    checkpoints: (j: { id: string }, _: unknown, ctx: GraphQLContext) => pipelines.checkpointsOf(ctx.services, j.id),
    events: (j: { id: string }, _: unknown, ctx: GraphQLContext) => pipelines.jobEventsOf(ctx.services, j.id),
    metrics: (j: { id: string }, _: unknown, ctx: GraphQLContext) => metricsOf(ctx, j.id),
  },

  PipelineVersion: {
    query: (v: { query: string; maskedQuery: string | null }, _: unknown, ctx: GraphQLContext) => pipelines.shownQuery(ctx.services, v),
  },

  Mutation: guarded("Mutation", {
    createPipeline: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => pipelines.createPipeline(ctx.services, input), (r) => ({ __typename: "PipelinePayload", pipeline: r.pipeline })),
    updatePipeline: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(
        () =>
          pipelines.updatePipeline(ctx.services, input.id, {
            parallelism: input.parallelism ?? undefined,
            checkpointIntervalMicros: input.checkpointIntervalMicros ?? undefined,
            query: input.query ?? undefined,
            ignoreState: input.ignoreState ?? undefined,
          }),
        (pipeline) => ({ __typename: "PipelinePayload", pipeline }),
      ),
    stopPipeline: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => pipelines.updatePipeline(ctx.services, input.id, { stop: input.mode }), (pipeline) => ({ __typename: "PipelinePayload", pipeline })),
    startPipeline: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => pipelines.updatePipeline(ctx.services, input.id, { stop: "none" }), (pipeline) => ({ __typename: "PipelinePayload", pipeline })),
    restartPipeline: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => pipelines.restartPipeline(ctx.services, input.id, input.ignoreState ?? false), (pipeline) => ({ __typename: "PipelinePayload", pipeline })),
    deletePipeline: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => pipelines.deletePipeline(ctx.services, input.id), (p) => ({ __typename: "DeletedPayload", id: p.id })),
    createUdf: (_: unknown, { input }: any, ctx: GraphQLContext) => result(() => udfs.createUdf(ctx.services, input), (udf) => ({ __typename: "UdfPayload", udf })),
    deleteUdf: (_: unknown, { input }: any, ctx: GraphQLContext) => result(() => udfs.deleteUdf(ctx.services, input.id), (u) => ({ __typename: "DeletedPayload", id: u.id })),
    createConnectionProfile: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => profiles.createProfile(ctx.services, input), (connectionProfile) => ({ __typename: "ConnectionProfilePayload", connectionProfile })),
    deleteConnectionProfile: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(() => profiles.deleteProfile(ctx.services, input.id), (p) => ({ __typename: "DeletedPayload", id: p.id })),
    async createApiToken(_: unknown, { input }: any, ctx: GraphQLContext) {
      try {
        const t = await tokens.createToken(ctx.services.db, input.name, input.role ?? "viewer");
        ctx.tokens.invalidate();
        return t;
      } catch (err) {
        if (err instanceof UserError) throw new GraphQLError(err.message, { extensions: { code: "BAD_USER_INPUT" } });
        throw err;
      }
    },
    deleteApiToken: (_: unknown, { input }: any, ctx: GraphQLContext) =>
      result(
        async () => {
          const r = await tokens.deleteToken(ctx.services.db, input.id);
          ctx.tokens.invalidate();
          return r;
        },
        (t) => ({ __typename: "DeletedPayload", id: t.id }),
      ),
  }),

  Subscription: guarded("Subscription", {
    jobUpdates: {
      async *subscribe(_: unknown, { pipelineId }: { pipelineId: string }, ctx: GraphQLContext) {
        const current = await pipelines.jobsOf(ctx.services, pipelineId).catch((err) => {
          throw err instanceof UserError ? new GraphQLError(err.message, { extensions: { code: "NOT_FOUND" } }) : err;
        });
        yield* stream(ctx.services, topics.pipelineJobs(pipelineId), current.map((job) => ({ jobUpdates: { job, reason: null } })), (payload) => {
          const { reason, ...job } = payload;
          return { jobUpdates: { job, reason: reason ?? null } };
        });
      },
    },
    jobMetrics: {
      async *subscribe(_: unknown, { jobId, intervalMs }: { jobId: string; intervalMs: number }, ctx: GraphQLContext) {
        await pipelines.getJob(ctx.services, jobId).catch((err) => {
          throw err instanceof UserError ? new GraphQLError(err.message, { extensions: { code: "NOT_FOUND" } }) : err;
        });
        const every = Math.max(100, intervalMs ?? 1000);
        let latest: any = await metricsOf(ctx, jobId);
        let fresh = latest !== null;
        let wake: (() => void) | null = null;
        // Throttled: at most one update per interval, always the newest.
        const unsubscribe = ctx.services.events.subscribe(topics.jobMetrics(jobId), (p) => {
          if (p.truncated) return;
          latest = { jobId, ...p };
          fresh = true;
          wake?.();
        });
        try {
          while (true) {
            if (!fresh) await new Promise<void>((r) => (wake = r));
            wake = null;
            fresh = false;
            yield { jobMetrics: latest };
            await Bun.sleep(every);
          }
        } finally {
          unsubscribe();
        }
      },
    },
    jobCheckpoints: {
      async *subscribe(_: unknown, { jobId }: { jobId: string }, ctx: GraphQLContext) {
        await pipelines.getJob(ctx.services, jobId).catch((err) => {
          throw err instanceof UserError ? new GraphQLError(err.message, { extensions: { code: "NOT_FOUND" } }) : err;
        });
        const current = await pipelines.checkpointsOf(ctx.services, jobId);
        yield* stream(ctx.services, topics.jobCheckpoints(jobId), current.map((c) => ({ jobCheckpoints: c })), (c) => ({ jobCheckpoints: c }));
      },
    },
    pipelineOutput: {
      async *subscribe(_: unknown, { pipelineId }: { pipelineId: string }, ctx: GraphQLContext) {
        await pipelines.getPipeline(ctx.services, pipelineId).catch((err) => {
          throw err instanceof UserError ? new GraphQLError(err.message, { extensions: { code: "NOT_FOUND" } }) : err;
        });
        const recent = ctx.supervisor.output.get(pipelineId) ?? [];
        yield* stream(
          ctx.services,
          topics.pipelineOutput(pipelineId),
          recent.length ? [{ pipelineOutput: { pipelineId, lines: [...recent] } }] : [],
          (p) => ({ pipelineOutput: { pipelineId, lines: p.lines } }),
        );
      },
    },
  }),
};
