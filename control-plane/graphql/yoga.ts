/**
 * The GraphQL server (graphql-yoga), built from plugins as envelop intends:
 * depth/cost/alias limits (graphql-armor), CSRF prevention, API tokens, and
 * masked unexpected errors (user errors stay readable). Subscriptions go over
 * server-sent events (yoga) and graphql-ws (WebSocket) on the same endpoint.
 */
import { createSchema, createYoga, type Plugin } from "graphql-yoga";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, type GraphQLSchema } from "graphql";
import { typeDefs } from "./type-defs.ts";
import { resolvers, type GraphQLContext } from "./resolvers.ts";

export function buildSchema(): GraphQLSchema {
  return createSchema<GraphQLContext>({ typeDefs, resolvers: resolvers as any });
}

function useApiTokens(): Plugin<GraphQLContext> {
  return {
    async onExecute({ args }) {
      const ctx = args.contextValue as GraphQLContext & { request?: Request; connectionParams?: Record<string, unknown> };
      const header = ctx.request?.headers.get("authorization") ?? (ctx.connectionParams?.authorization as string | undefined) ?? null;
      const problem = await ctx.tokens.check(header);
      if (problem) throw new GraphQLError(problem, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
    },
    async onSubscribe({ args }) {
      const ctx = args.contextValue as GraphQLContext & { request?: Request; connectionParams?: Record<string, unknown> };
      const header = ctx.request?.headers.get("authorization") ?? (ctx.connectionParams?.authorization as string | undefined) ?? null;
      const problem = await ctx.tokens.check(header);
      if (problem) throw new GraphQLError(problem, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
    },
  };
}

export function buildYoga(context: Omit<GraphQLContext, never>, schema = buildSchema()) {
  return createYoga<{}, GraphQLContext>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    graphiql: { title: "Runnel", subscriptionsProtocol: "WS" },
    context: () => context,
    maskedErrors: true,
    logging: process.env.RUNNEL_LOG_GRAPHQL === "1" ? "debug" : "warn",
    plugins: [
      useCSRFPrevention({ requestHeaders: ["x-graphql-yoga-csrf", "apollo-require-preflight"] }),
      EnvelopArmorPlugin({
        maxDepth: { n: 10 },
        costLimit: { maxCost: 5000 },
        maxAliases: { n: 15 },
        maxDirectives: { n: 20 },
        maxTokens: { n: 5000 },
        blockFieldSuggestion: { enabled: false },
      }),
      useApiTokens(),
    ],
  });
}
