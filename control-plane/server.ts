/**
 * The control plane: database, services, job supervisor and the HTTP server
 * (GraphQL with SSE and WebSocket subscriptions, REST, Prometheus) in one
 * object that tests start and stop in-process.
 */
import { Hono } from "hono";
import { makeHandler, handleProtocols } from "graphql-ws/use/bun";
import { execute, subscribe } from "graphql";
import { createRegistry } from "../core/registry/loader.ts";
import { openDatabase, type Database } from "./db/connect.ts";
import { buildSchema, buildYoga } from "./graphql/yoga.ts";
import type { GraphQLContext } from "./graphql/resolvers.ts";
import { Supervisor } from "./jobs/supervisor.ts";
import { prometheusText } from "./metrics.ts";
import { restRoutes } from "./rest/routes.ts";
import { mountConsole } from "./http/console.ts";
import type { Services, Settings } from "./services/context.ts";
import { EventBus } from "./services/events.ts";
import { TokenCheck } from "./services/tokens.ts";

export interface ControlPlane {
  url: string;
  services: Services;
  supervisor: Supervisor;
  stop(): Promise<void>;
}

export async function startControlPlane(settings: Settings, options: { databaseUrl?: string } = {}): Promise<ControlPlane> {
  const database: Database = await openDatabase({ url: options.databaseUrl, dataDir: settings.dataDir });
  const registry = await createRegistry();
  for (const f of registry.failures) console.error(`warning: plugin '${f.plugin}' failed to load: ${f.cause}`);
  const events = new EventBus(database, settings.instanceId);
  await events.start();
  const services: Services = { database, db: database.db, registry, events, settings };
  const supervisor = new Supervisor(services);
  const tokens = new TokenCheck(services);
  const context: GraphQLContext = { services, supervisor, tokens };
  const schema = buildSchema();
  const yoga = buildYoga(context, schema);

  const app = new Hono();
  app.use("/api/v1/*", async (c, next) => {
    const problem = await tokens.check(c.req.header("authorization") ?? null);
    if (problem) return c.json({ error: problem }, 401);
    await next();
  });
  app.route("/api/v1", restRoutes(services));
  app.get("/metrics", async (c) => {
    const problem = await tokens.check(c.req.header("authorization") ?? null);
    if (problem) return c.text(problem, 401);
    const { text, contentType } = await prometheusText(services, supervisor);
    return c.body(text, 200, { "content-type": contentType });
  });
  mountConsole(app);
  app.notFound((c) =>
    c.json({ error: `no route ${c.req.method} ${new URL(c.req.url).pathname}; the API is at /graphql and /api/v1 (see the README)` }, 404),
  );
  app.all("/graphql", (c) => yoga.fetch(c.req.raw, {}));

  // graphql-ws over WebSocket on the same endpoint, running the operations through yoga's envelop (same plugins, same context).
  const websocket = makeHandler<Record<string, unknown>>({
    schema,
    execute: (args: any) => args.rootValue.execute(args),
    subscribe: (args: any) => args.rootValue.subscribe(args),
    // The token travels in the connection params ({ authorization: "Bearer ..." }); refused connections close with 4403.
    onConnect: async (ctx) => (await tokens.check((ctx.connectionParams?.authorization as string | undefined) ?? null)) === null,
    onSubscribe: async (ctx, _id, payload) => {
      const enveloped = yoga.getEnveloped({ ...context, connectionParams: ctx.connectionParams ?? {} } as any);
      const args = {
        schema: enveloped.schema,
        operationName: payload.operationName,
        document: enveloped.parse(payload.query),
        variableValues: payload.variables,
        contextValue: await enveloped.contextFactory(),
        rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
      };
      const errors = enveloped.validate(args.schema, args.document);
      if (errors.length) return errors;
      return args as any;
    },
  });
  void execute;
  void subscribe;

  const server = Bun.serve({
    port: settings.port,
    hostname: process.env.RUNNEL_HOST ?? "0.0.0.0",
    idleTimeout: 0,
    fetch(request, srv) {
      const url = new URL(request.url);
      if (url.pathname === "/graphql" && request.headers.get("upgrade")?.toLowerCase() === "websocket") {
        if (!handleProtocols(request.headers.get("sec-websocket-protocol") ?? "")) {
          return new Response("unsupported WebSocket subprotocol; use graphql-transport-ws (the graphql-ws client)", { status: 400 });
        }
        if (srv.upgrade(request)) return undefined as unknown as Response;
        return new Response("WebSocket upgrade failed", { status: 500 });
      }
      return app.fetch(request);
    },
    websocket,
  });

  await supervisor.start();
  const url = `http://localhost:${server.port}`;
  return {
    url,
    services,
    supervisor,
    async stop() {
      await supervisor.shutdown();
      server.stop(true);
      await events.stop();
      await database.close();
    },
  };
}
