/**
 * The GraphQL server (graphql-yoga), built from plugins as envelop intends:
 * depth/cost/alias limits (graphql-armor), CSRF prevention, CORS only for the
 * origins configured, the caller's identity from its API token (each root
 * field then checks the caller's role, see resolvers.ts), and masked
 * unexpected errors (user errors stay readable). Subscriptions go over
 * server-sent events (yoga) and graphql-ws (WebSocket) on the same endpoint.
 */
import { createSchema, createYoga, type Plugin } from "graphql-yoga";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, type GraphQLSchema } from "graphql";
import { CSRF_HEADERS } from "../security/http-guard.ts";
import { typeDefs } from "./type-defs.ts";
import { resolvers, type GraphQLContext } from "./resolvers.ts";

export function buildSchema(): GraphQLSchema {
  return createSchema<GraphQLContext>({ typeDefs, resolvers: resolvers as any });
}

/** Who calls: from the request's Authorization header, or graphql-ws's connection params. Unknown callers stop here (401, or 403 on a server that answers nobody). */
function useCaller(): Plugin<GraphQLContext> {
  return {
    async onContextBuilding({ context, extendContext }) {
      const ctx = context as GraphQLContext & { request?: Request; connectionParams?: Record<string, unknown> };
      const header = ctx.request?.headers.get("authorization") ?? (ctx.connectionParams?.authorization as string | undefined) ?? null;
      const identity = await ctx.tokens.identify(header);
      if ("problem" in identity) {
        throw new GraphQLError(identity.problem, { extensions: { code: identity.status === 401 ? "UNAUTHENTICATED" : "FORBIDDEN", http: { status: identity.status } } });
      }
      extendContext({ caller: identity.caller });
    },
  };
}

export function buildYoga(context: Omit<GraphQLContext, "caller">, schema = buildSchema(), corsOrigins: string[] = []) {
  return createYoga<{}, GraphQLContext>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    graphiql: { title: "Runnel", subscriptionsProtocol: "WS" },
    // A fresh object per operation: the caller is set on it.
    context: () => ({ ...context }),
    maskedErrors: true,
    // Off unless origins are listed: yoga's default would reflect any Origin, with credentials.
    cors: corsOrigins.length > 0 ? { origin: corsOrigins, credentials: true, allowedHeaders: ["authorization", "content-type", ...CSRF_HEADERS] } : false,
    logging: process.env.RUNNEL_LOG_GRAPHQL === "1" ? "debug" : "warn",
    plugins: [
      useCSRFPrevention({ requestHeaders: CSRF_HEADERS }),
      EnvelopArmorPlugin({
        maxDepth: { n: 10 },
        costLimit: { maxCost: 5000 },
        maxAliases: { n: 15 },
        maxDirectives: { n: 20 },
        maxTokens: { n: 5000 },
        blockFieldSuggestion: { enabled: false },
      }),
      useCaller(),
    ],
  });
}
