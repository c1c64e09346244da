/**
 * The control plane: database, services, job supervisor and the HTTP server
 * (GraphQL with SSE and WebSocket subscriptions, REST, Prometheus) in one
 * object that tests start and stop in-process.
 *
 * Secure by default: it listens on loopback unless RUNNEL_HOST says
 * otherwise, and refuses to listen anywhere else without API tokens (unless
 * RUNNEL_ALLOW_UNAUTHENTICATED=1, which it warns about at every start).
 * Every request passes security/http-guard.ts first.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { makeHandler, handleProtocols } from "graphql-ws/use/bun";
import { storageScheme } from "../core/checkpoint/store.ts";
import { createRegistry } from "../core/registry/loader.ts";
import { openDatabase, type Database } from "./db/connect.ts";
import { buildSchema, buildYoga } from "./graphql/yoga.ts";
import type { GraphQLContext } from "./graphql/resolvers.ts";
import { Sandbox } from "./jobs/sandbox.ts";
import { Supervisor } from "./jobs/supervisor.ts";
import { prometheusText } from "./metrics.ts";
import { restAccess, restRole } from "./rest/access.ts";
import { restRoutes } from "./rest/routes.ts";
import { mountConsole } from "./http/console.ts";
import { CSRF_HEADERS, guardRequest, withBoundedBody } from "./security/http-guard.ts";
import { privateDir, privateUmask } from "./security/private-files.ts";
import { allows, forbiddenMessage, isLoopbackHost } from "./security/roles.ts";
import { SecretBox } from "./security/secret-box.ts";
import type { Services, Settings } from "./services/context.ts";
import { EventBus } from "./services/events.ts";
import { maskStoredQueries } from "./services/pipelines.ts";
import { resealProfiles } from "./services/profiles.ts";
import { TokenCheck } from "./services/tokens.ts";

export interface ControlPlane {
  url: string;
  /** The address it listens on. */
  host: string;
  port: number;
  services: Services;
  supervisor: Supervisor;
  /** What it said at start about its exposure (also logged). */
  notices: string[];
  stop(): Promise<void>;
}

/** The control plane's own directories, private to its user; the default file root is created too. */
function prepareDirectories(settings: Settings): void {
  privateDir(settings.dataDir);
  for (const root of settings.fileRoots) if (root.startsWith(`${settings.dataDir}/`)) privateDir(root);
  // Workers run as another user write the checkpoints themselves: their directory is theirs to set up.
  if (!storageScheme(settings.checkpointDir) && settings.workerWrapper.length === 0) privateDir(settings.checkpointDir);
}

/** Refuses to listen beyond loopback without tokens; says what the exposure is. */
async function exposure(settings: Settings, tokens: TokenCheck): Promise<string[]> {
  const hasTokens = await tokens.anyTokens();
  const loopback = isLoopbackHost(settings.host);
  if (hasTokens) return [`API tokens required on every request; listening on ${settings.host}${loopback ? " (this machine only; set RUNNEL_HOST to expose it)" : ""}`];
  if (loopback) {
    return [
      `no API tokens: listening on ${settings.host} only, where every local user and process has the admin role. ` +
        `To expose the control plane, create a token (runnel token create --name <who> --role admin) and set RUNNEL_HOST`,
    ];
  }
  if (!settings.allowUnauthenticated) {
    throw new Error(
      `RUNNEL_HOST=${settings.host} would let anyone who reaches port ${settings.port} run code as this server's user, and no API token exists. ` +
        `Create one first (runnel token create --name <who> --role admin, or RUNNEL_API_TOKENS), ` +
        `or set RUNNEL_ALLOW_UNAUTHENTICATED=1 to run without authentication anyway`,
    );
  }
  return [
    `WARNING: listening on ${settings.host} WITHOUT AUTHENTICATION (RUNNEL_ALLOW_UNAUTHENTICATED=1): anyone who can reach port ${settings.port} ` +
      `can create pipelines and UDFs, that is run code as this server's user. Create API tokens and unset RUNNEL_ALLOW_UNAUTHENTICATED`,
  ];
}

export async function startControlPlane(
  settings: Settings,
  options: { databaseUrl?: string; log?: (line: string) => void } = {},
): Promise<ControlPlane> {
  const log = options.log ?? ((line: string) => console.error(line));
  // Everything this process and its workers create is for its user alone.
  privateUmask();
  prepareDirectories(settings);
  const database: Database = await openDatabase({ url: options.databaseUrl, dataDir: settings.dataDir });
  const sandbox = new Sandbox(settings);
  const cleanup: (() => Promise<void>)[] = [() => sandbox.close(), () => database.close()];
  try {
    const secrets = await SecretBox.open(settings);
    const registry = await createRegistry();
    for (const f of registry.failures) log(`warning: plugin '${f.plugin}' failed to load: ${f.cause}`);
    const events = new EventBus(database, settings.instanceId);
    await events.start();
    cleanup.unshift(() => events.stop());
    const services: Services = { database, db: database.db, registry, events, settings, secrets, sandbox };
    const sealed = await resealProfiles(services);
    if (sealed > 0) log(`sealed the secrets of ${sealed} connection profile${sealed > 1 ? "s" : ""} with key ${secrets.currentKeyId} (${secrets.origin})`);
    await maskStoredQueries(services);
    const tokens = new TokenCheck(services);
    const notices = await exposure(settings, tokens);
    for (const n of notices) log(n);
    return await serve(settings, services, tokens, notices, cleanup);
  } catch (err) {
    for (const c of cleanup) await c().catch(() => {});
    throw err;
  }
}

async function serve(settings: Settings, services: Services, tokens: TokenCheck, notices: string[], cleanup: (() => Promise<void>)[]): Promise<ControlPlane> {
  const supervisor = new Supervisor(services);
  const context: Omit<GraphQLContext, "caller"> = { services, supervisor, tokens };
  const schema = buildSchema();
  const yoga = buildYoga(context, schema, settings.corsOrigins);

  const app = new Hono();
  if (settings.corsOrigins.length > 0) {
    app.use("/api/v1/*", cors({ origin: settings.corsOrigins, credentials: true, allowHeaders: ["authorization", "content-type", ...CSRF_HEADERS] }));
  }
  app.use("/api/v1/*", restAccess(tokens, restRole));
  app.route("/api/v1", restRoutes(services));
  app.get("/metrics", async (c) => {
    const identity = await tokens.identify(c.req.header("authorization") ?? null);
    if ("problem" in identity) return c.text(identity.problem, identity.status);
    if (!allows(identity.caller, "viewer")) return c.text(forbiddenMessage(identity.caller, "viewer", "/metrics"), 403);
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
    onConnect: async (ctx) => "caller" in (await tokens.identify((ctx.connectionParams?.authorization as string | undefined) ?? null)),
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

  const server = Bun.serve({
    port: settings.port,
    hostname: settings.host,
    idleTimeout: 0,
    // Bodies are refused by their announced or counted size first (a 413 that says why); this is the last resort.
    maxRequestBodySize: Math.max(settings.maxBodyBytes, 1024 ** 3),
    async fetch(request, srv) {
      const refused = await guardRequest(settings, tokens, request);
      if (refused) return refused;
      const url = new URL(request.url);
      if (url.pathname === "/graphql" && request.headers.get("upgrade")?.toLowerCase() === "websocket") {
        if (!handleProtocols(request.headers.get("sec-websocket-protocol") ?? "")) {
          return new Response("unsupported WebSocket subprotocol; use graphql-transport-ws (the graphql-ws client)", { status: 400 });
        }
        if (srv.upgrade(request)) return undefined as unknown as Response;
        return new Response("WebSocket upgrade failed", { status: 500 });
      }
      const bounded = await withBoundedBody(settings, request);
      return bounded instanceof Response ? bounded : app.fetch(bounded);
    },
    websocket: { ...websocket, maxPayloadLength: settings.maxBodyBytes },
  });

  await supervisor.start();
  const port = server.port!;
  const wildcard = settings.host === "0.0.0.0" || settings.host === "::";
  const shown = isLoopbackHost(settings.host) || wildcard ? "localhost" : settings.host.includes(":") ? `[${settings.host}]` : settings.host;
  return {
    url: `http://${shown}:${port}`,
    host: settings.host,
    port,
    services,
    supervisor,
    notices,
    async stop() {
      await supervisor.shutdown();
      server.stop(true);
      for (const c of cleanup) await c();
    },
  };
}
