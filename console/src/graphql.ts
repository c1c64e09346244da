/**
 * Typed GraphQL documents: gql.tada infers each query's result and variables
 * from the printed schema (control-plane/schema.graphql), through the
 * introspection types in graphql-env.d.ts (`bun run console:codegen`).
 */
import { initGraphQLTada } from "gql.tada";
import type { introspection } from "./graphql-env.d.ts";

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { Micros: number; JSON: unknown };
}>();

export type { FragmentOf, ResultOf, VariablesOf } from "gql.tada";
