/**
 * SELECT (DataFusion's select.rs): FROM, then WHERE and the projection, or
 * GROUP BY and aggregates when the select has them.
 */
import { typeName } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type * as A from "../ast.ts";
import type { PlanNode } from "../../plan/logical.ts";
import { SqlError } from "../errors.ts";
import { walkExpr } from "../ast.ts";
import { exprKey, resolveExpr, type Scope, type ScopeColumn } from "../expressions.ts";
import { columnRef, exprContext, fieldsOf, filterNode, mapNode, type CteEnv, type QueryPlanner, type Rel } from "./context.ts";
import { containsAggregate, planAggregate } from "./aggregates.ts";
import { planFrom } from "./relations.ts";
import { isWindowCall } from "./windows.ts";
import { overCalls, planWindowFunctions, pushTopN } from "./window-functions.ts";
import { planQuery } from "./query.ts";
import { planCorrelatedScalar, planWherePredicates } from "./subqueries.ts";

/** Plans a SELECT; `from` is its FROM when the caller planned it already. */
export function planSelect(p: QueryPlanner, selectIn: A.Select, env: CteEnv, from?: Rel): Rel {
  if (selectIn.distinct) return planDistinct(p, planSelect(p, { ...selectIn, distinct: false }, env, from));
  // IN / EXISTS conjuncts of WHERE join the input as semi / anti joins; the rest of WHERE is planned below.
  const { input, select } = planWherePredicates(p, selectIn, from ?? planFrom(p, selectIn, env), env);
  if (select.orderByAt !== undefined) {
    throw new SqlError("ORDER BY is not supported on unbounded streams (a stream has no end to sort by); remove it, and use min()/max() per window for extremes", select.orderByAt);
  }
  if (select.limitAt !== undefined) {
    throw new SqlError("LIMIT is not supported on unbounded streams; remove it (a bounded source, e.g. impulse with message_count, ends by itself)", select.limitAt);
  }
  const items = select.items;
  const hasAggregates = items.some((i) => i.kind === "expr" && containsAggregate(p, i.expr)) || (select.having && containsAggregate(p, select.having));
  const hasWindow = items.some((i) => i.kind === "expr" && isWindowCall(i.expr)) || select.groupBy.some(isWindowCall);
  const over = items.flatMap((i) => (i.kind === "expr" ? overCalls(i.expr) : []));
  if (over.length > 0) {
    if (select.groupBy.length > 0 || hasAggregates || hasWindow) {
      throw new SqlError(
        "window functions (OVER) cannot be mixed with GROUP BY in one SELECT; aggregate in a subquery and apply the window function in the outer query",
        over[0]!.at,
      );
    }
    return planWindowFunctions(p, select, input, over);
  }
  if (select.groupBy.length === 0 && !hasAggregates && !hasWindow) {
    if (select.having) throw new SqlError("HAVING needs GROUP BY or an aggregate", select.havingAt ?? select.at);
    return planProjection(p, select, input, env);
  }
  return planAggregate(p, select, input);
}

/** A SELECT item after `*` expansion: an expression, or a column of the input taken as it is. */
export interface SelectedItem {
  ast: A.Expr | null;
  name: string;
  direct?: number;
}

/** Expands `*` and `t.*`, names every item, and makes the names unique. */
export function expandItems(items: A.SelectItem[], scope: Scope): SelectedItem[] {
  const out: SelectedItem[] = [];
  items.forEach((item, i) => {
    if (item.kind === "star") {
      const q = item.qualifier;
      const cols = scope.columns.map((c, idx) => ({ c, idx })).filter(({ c }) => q === undefined || c.qualifier?.toLowerCase() === q.toLowerCase());
      if (cols.length === 0) throw new SqlError(`\`${q}.*\` matches no table in FROM`, item.at);
      for (const { c, idx } of cols) out.push({ ast: null, name: c.name, direct: idx });
      return;
    }
    out.push({ ast: item.expr, name: item.alias ?? deriveName(item.expr, i) });
  });
  // Unique output names, so sinks that take the query's columns get distinct keys.
  const seen = new Map<string, number>();
  for (const o of out) {
    const n = (seen.get(o.name.toLowerCase()) ?? 0) + 1;
    seen.set(o.name.toLowerCase(), n);
    if (n > 1) o.name = `${o.name}_${n}`;
  }
  return out;
}

function deriveName(e: A.Expr, i: number): string {
  if (e.kind === "column") return e.parts[e.parts.length - 1]!;
  if (e.kind === "call") return e.name;
  if (e.kind === "cast") return deriveName(e.expr, i);
  return `column_${i + 1}`;
}

export function resolveWhere(p: QueryPlanner, where: A.Expr, scope: Scope): Expr {
  const filter = resolveExpr(where, scope, exprContext(p, "WHERE"));
  if (filter.type.kind !== "boolean") throw new SqlError(`WHERE needs a boolean condition, got ${typeName(filter.type)}`, where.at);
  return filter;
}

/** The unnest(...) calls of an expression (not inside subqueries). */
function unnestCalls(e: A.Expr): Extract<A.Expr, { kind: "call" }>[] {
  const out: Extract<A.Expr, { kind: "call" }>[] = [];
  walkExpr(e, (n) => {
    if (n.kind === "subquery" || n.kind === "exists") return false;
    if (n.kind === "call" && n.name === "unnest" && !n.over) {
      out.push(n);
      return false;
    }
  });
  return out;
}

/**
 * unnest(array) in the SELECT list: after WHERE, an unnest node appends each
 * element as a column, one row per element, and the SELECT list reads it there.
 */
function planUnnest(p: QueryPlanner, select: A.Select, input: Rel, calls: Extract<A.Expr, { kind: "call" }>[]): { rel: Rel; element: Expr } {
  const first = calls[0]!;
  // DataFusion zips several unnests; one per SELECT keeps the rows' count plain.
  const ctx = exprContext(p, "unnest()");
  for (const c of calls) if (c.args.length !== 1) throw new SqlError("unnest() takes one array", c.at);
  const array = resolveExpr(first.args[0]!, input.scope, ctx);
  const other = calls.find((c) => exprKey(resolveExpr(c.args[0]!, input.scope, ctx)) !== exprKey(array));
  if (other) throw new SqlError("one unnest() per SELECT; unnest the other array in an outer query over this one", other.at);
  if (array.type.kind !== "array") throw new SqlError(`unnest() takes an array, got ${typeName(array.type)}`, first.at);
  let node = input.node;
  if (select.where) node = filterNode(node, input.scope, resolveWhere(p, select.where, input.scope));
  const width = input.scope.columns.length;
  const elementType = array.type.element;
  const fields = [...fieldsOf(input.scope), { name: "unnest", type: elementType, nullable: true }];
  const unnest: PlanNode = { kind: "unnest", input: node, array, schema: { fields }, updating: node.updating };
  const scope: Scope = { columns: [...input.scope.columns, { name: "\u0000unnest", type: elementType, nullable: true }], label: input.scope.label };
  return { rel: { node: unnest, scope }, element: { kind: "column", index: width, name: "unnest", type: elementType } };
}

/** The scalar subqueries of an expression (not inside other subqueries). */
function scalarSubqueries(e: A.Expr): Extract<A.Expr, { kind: "subquery" }>[] {
  const out: Extract<A.Expr, { kind: "subquery" }>[] = [];
  walkExpr(e, (n) => {
    if (n.kind === "subquery") {
      out.push(n);
      return false;
    }
    if (n.kind === "exists") return false;
  });
  return out;
}

/**
 * Scalar subqueries in SELECT and WHERE, planned as joins: an aggregate
 * without GROUP BY (one row, updating as its input grows) is joined to every
 * row of the query through a constant key; one correlated on equalities is
 * grouped by its inner keys and joined on them. A LEFT join, so an empty
 * subquery is NULL (0 for count); the result is updating, as the value changes.
 */
function planScalarSubqueries(p: QueryPlanner, input: Rel, subqueries: Extract<A.Expr, { kind: "subquery" }>[], env: CteEnv): { rel: Rel; hook: (x: A.Expr) => Expr | undefined } {
  let rel: Rel = input;
  const slot = new Map<A.Expr, { index: number; zero: boolean }>();
  const one: Expr = { kind: "literal", value: 1, type: { kind: "int", bits: 64 } };
  for (const sq of subqueries) {
    // count() of no rows is 0, where the LEFT join gives NULL: DataFusion's "count bug", fixed when reading.
    const item = sq.query.body.kind === "select" && sq.query.body.items.length === 1 ? sq.query.body.items[0] : undefined;
    const zero = item?.kind === "expr" && item.expr.kind === "call" && !item.expr.over && ZERO_ON_EMPTY.has(item.expr.name);
    const correlated = planCorrelatedScalar(p, rel, sq.query, env);
    if (correlated) {
      rel = correlated.rel;
      slot.set(sq, { index: correlated.valueIndex, zero });
      continue;
    }
    const sub = planQuery(p, sq.query, env);
    if (sub.scope.columns.length !== 1) throw new SqlError(`a scalar subquery gives one column; this one gives ${sub.scope.columns.length}`, sq.query.at);
    const single = (n: PlanNode): boolean => (n.kind === "map" ? single(n.input) : n.kind === "updating_aggregate" && n.keys.length === 0);
    if (!single(sub.node)) {
      throw new SqlError(
        "a scalar subquery must be an aggregate without GROUP BY (it then gives one row), or one correlated on equalities with the outer query (WHERE inner.k = outer.k); join the tables instead (JOIN ... ON)",
        sq.query.at,
      );
    }
    const width = rel.scope.columns.length;
    const col = sub.scope.columns[0]!;
    const columns = [...rel.scope.columns, { name: `\u0000subquery${width}`, type: col.type, nullable: true }];
    const node: PlanNode = {
      kind: "join",
      left: rel.node,
      right: sub.node,
      joinType: "left",
      leftKeys: [one],
      rightKeys: [one],
      schema: { fields: columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })) },
      updating: true,
      ttl: p.updatingTtl,
    };
    rel = { node, scope: { columns, label: input.scope.label } };
    slot.set(sq, { index: width, zero });
  }
  const columns = rel.scope.columns;
  const hook = (x: A.Expr): Expr | undefined => {
    const s = slot.get(x);
    if (!s) return undefined;
    const c = columns[s.index]!;
    const value: Expr = { kind: "column", index: s.index, name: c.name, type: c.type };
    return s.zero ? { kind: "call", name: "coalesce", args: [value, { kind: "literal", value: 0, type: c.type }], type: c.type } : value;
  };
  return { rel, hook };
}

/** Aggregates whose value over no rows is 0, not NULL. */
const ZERO_ON_EMPTY = new Set(["count", "regr_count", "approx_distinct"]);

function planProjection(p: QueryPlanner, select: A.Select, inputIn: Rel, env: CteEnv): Rel {
  let input = inputIn;
  const width = input.scope.columns.length;
  const unnests = select.items.flatMap((i) => (i.kind === "expr" ? unnestCalls(i.expr) : []));
  const subqueries = [...select.items.flatMap((i) => (i.kind === "expr" ? scalarSubqueries(i.expr) : [])), ...(select.where ? scalarSubqueries(select.where) : [])];
  let hook: ((x: A.Expr) => Expr | undefined) | undefined;
  if (unnests.length > 0 && subqueries.length > 0) throw new SqlError("unnest() and a scalar subquery in one SELECT are not supported; unnest in a subquery first", subqueries[0]!.at);
  if (unnests.length > 0) {
    const planned = planUnnest(p, select, input, unnests);
    input = planned.rel;
    hook = (x) => (x.kind === "call" && x.name === "unnest" && !x.over ? planned.element : undefined);
    select = { ...select, where: undefined };
  }
  if (subqueries.length > 0) ({ rel: input, hook } = planScalarSubqueries(p, input, subqueries, env));
  const scope = input.scope;
  let filter: Expr | undefined;
  if (select.where) {
    filter = resolveExpr(select.where, scope, exprContext(p, "WHERE", hook));
    if (filter.type.kind !== "boolean") throw new SqlError(`WHERE needs a boolean condition, got ${typeName(filter.type)}`, select.where.at);
  }
  const selected = expandItems(select.items, { ...scope, columns: scope.columns.slice(0, width) });
  const ctx = exprContext(p, "the SELECT list", hook);
  const exprs: Expr[] = selected.map((s) => (s.direct !== undefined ? columnRef(scope, s.direct) : resolveExpr(s.ast!, scope, ctx)));
  const columns: ScopeColumn[] = selected.map((s, i) => ({
    name: s.name,
    type: exprs[i]!.type,
    nullable: s.direct !== undefined ? scope.columns[s.direct]!.nullable : true,
  }));
  const outScope: Scope = { columns, label: "the query" };
  let source = input.node;
  if (filter) ({ node: source, filter } = pushTopN(input.node, filter));
  const identity = !filter && exprs.length === scope.columns.length && exprs.every((e, i) => e.kind === "column" && e.index === i);
  if (identity) return { node: source, scope: outScope };
  return { node: mapNode(source, exprs, filter, fieldsOf(outScope)), scope: outScope };
}

/**
 * SELECT DISTINCT: a GROUP BY of every selected column without aggregates, so
 * each distinct row is inserted once (and deleted when an updating input takes
 * its last copy back). Its state is one entry per distinct row (SET updating_ttl bounds it).
 */
function planDistinct(p: QueryPlanner, rel: Rel): Rel {
  const keys = rel.scope.columns.map((_, i) => columnRef(rel.scope, i));
  const node: PlanNode = {
    kind: "updating_aggregate",
    input: rel.node,
    keys,
    aggregates: [],
    schema: { fields: fieldsOf(rel.scope) },
    updating: true,
    ttl: p.updatingTtl,
    ttlRetract: p.updatingTtlRetract,
  };
  return { node, scope: rel.scope };
}
