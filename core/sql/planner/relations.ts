/**
 * FROM: tables (sources, change streams), views, CTEs, in-memory tables and
 * subqueries, joined left to right (DataFusion's relation/mod.rs).
 */
import type { Expr } from "../../expr/expr.ts";
import type { PlanNode, TableDef } from "../../plan/logical.ts";
import type * as A from "../ast.ts";
import { didYouMean, SqlError } from "../errors.ts";
import { conform } from "./sinks.ts";
import { CteEnv, fieldsOf, requalify, type QueryPlanner, type Rel } from "./context.ts";
import { planJoin } from "./joins.ts";
import { lookupTableOf, planLookupJoin, refuseLookupAsSource } from "./lookup-joins.ts";
import { planQuery, planQueryText } from "./query.ts";
import { union } from "./set-operations.ts";

export function planFrom(p: QueryPlanner, select: A.Select, env: CteEnv): Rel {
  if (!select.from) {
    throw new SqlError("a streaming query needs FROM: read from a table declared with CREATE TABLE", select.items[0]?.at ?? select.at);
  }
  return planFromItem(p, select.from, env);
}

export function planFromItem(p: QueryPlanner, item: A.FromItem, env: CteEnv): Rel {
  switch (item.kind) {
    case "join": {
      const leftLookup = lookupTableOf(p, item.left, env);
      if (leftLookup) refuseLookupAsSource(leftLookup, item.left.at);
      const lookup = lookupTableOf(p, item.right, env);
      if (lookup) return planLookupJoin(p, planFromItem(p, item.left, env), item, lookup);
      return planJoin(p, planFromItem(p, item.left, env), planFromItem(p, item.right, env), item);
    }
    case "derived": {
      const rel = planQuery(p, item.query, env);
      return item.alias ? { node: rel.node, scope: requalify(rel.scope, item.alias) } : rel;
    }
    case "unnest":
      throw new SqlError("UNNEST in FROM is not supported; write unnest(t.array) AS x in the SELECT list of a query over t", item.at);
    case "table": {
      const lookup = lookupTableOf(p, item, env);
      if (lookup) refuseLookupAsSource(lookup, item.at);
      if (item.asOf) {
        throw new SqlError(`FOR SYSTEM_TIME AS OF joins a lookup table; declare \`${item.name}\` with type = 'lookup' (and its PRIMARY KEY) to read it by key, or remove the clause to join it as a stream`, item.asOf.at);
      }
      const rel = relationByName(p, item.name, env, item.at);
      return { node: rel.node, scope: requalify(rel.scope, item.alias ?? item.name) };
    }
  }
}

export function relationByName(p: QueryPlanner, name: string, env: CteEnv, offset: number | null): Rel {
  const cte = env.get(name);
  if (cte) {
    if (cte.planning) throw new SqlError(`CTE \`${name}\` refers to itself; recursive queries are not supported`, offset);
    if (!cte.rel) {
      cte.planning = true;
      cte.rel = planQuery(p, cte.query, env);
      cte.planning = false;
    }
    return cte.rel;
  }
  const key = name.toLowerCase();
  const view = p.views.get(key);
  if (view) {
    if (view.planning) throw new SqlError(`view \`${name}\` refers to itself`, offset);
    if (!view.rel) {
      view.planning = true;
      view.rel = planQueryText(p, view.stmt.query, new CteEnv(null));
      view.planning = false;
    }
    return view.rel;
  }
  const table = p.tables.get(key);
  if (!table) {
    const known = [...p.tables.values()].map((x) => x.name).concat([...p.views.values()].map((v) => v.stmt.name));
    throw new SqlError(`unknown table \`${name}\`${didYouMean(name, known)}; declare it with CREATE TABLE`, offset);
  }
  if (!table.connector) return memoryTable(p, table, offset);
  const connector = p.registry.connector(table.connector)!;
  if (!connector.source) throw new SqlError(`connector '${table.connector}' cannot be read from (table \`${table.name}\` is a sink)`, offset);
  if (table.declaredRole === "sink") throw new SqlError(`table \`${table.name}\` is declared with type = 'sink'; it cannot be read`, offset);
  if (table.inferColumns || table.fields.length === 0) {
    throw new SqlError(`table \`${table.name}\` declares no columns; a source needs its columns declared`, offset);
  }
  p.markUsed(table, "source");
  let node = p.sourceNodes.get(table);
  const fields = [...table.fields, ...table.virtual.map((v) => v.field)];
  if (!node) {
    node = { kind: "source", table, schema: { fields }, updating: !!table.changelog };
    if (table.changelog && table.primaryKey) {
      const keys: Expr[] = table.primaryKey.map((i) => ({ kind: "column", index: i, name: fields[i]!.name, type: fields[i]!.type }));
      node = { kind: "changelog", input: node, keys, schema: { fields }, updating: true, ttl: p.updatingTtl } satisfies PlanNode;
    }
    p.sourceNodes.set(table, node);
  }
  return { node, scope: { columns: fields.map((f) => ({ ...f, qualifier: table.name })), label: `\`${table.name}\`` } };
}

function memoryTable(p: QueryPlanner, table: TableDef, offset: number | null): Rel {
  const key = table.name.toLowerCase();
  const state = p.memoryRels.get(key) ?? {};
  p.memoryRels.set(key, state);
  if (state.rel) return state.rel;
  if (state.planning) throw new SqlError(`in-memory table \`${table.name}\` is fed from itself`, offset);
  const inserts = p.memoryInserts.get(key) ?? [];
  if (inserts.length === 0) {
    throw new SqlError(`in-memory table \`${table.name}\` is read but nothing is inserted into it; INSERT INTO it, or give it a connector`, offset);
  }
  state.planning = true;
  let rel: Rel | undefined;
  for (const s of inserts) {
    let part = planQueryText(p, s.query, new CteEnv(null));
    if (table.fields.length === 0) table.fields = fieldsOf(part.scope);
    part = conform(part, table, s.tableOffset);
    rel = rel ? union(rel, part, s.tableOffset) : part;
  }
  state.planning = false;
  state.rel = { node: rel!.node, scope: { columns: table.fields.map((f) => ({ ...f, qualifier: table.name })), label: `\`${table.name}\`` } };
  return state.rel;
}
