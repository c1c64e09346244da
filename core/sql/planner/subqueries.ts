/**
 * Subqueries in WHERE, planned as joins the way DataFusion's decorrelation
 * rules do (decorrelate_predicate_subquery.rs, scalar_subquery_to_join.rs):
 * `x [NOT] IN (SELECT y ...)` and `[NOT] EXISTS (SELECT ... WHERE inner.k =
 * outer.k)`, conjuncts of WHERE, become semi and anti joins on the existing
 * join operators (a window join when both sides carry the same window, an
 * updating join when neither does). Equalities between an inner and an outer
 * expression in the subquery's WHERE become join keys; its other conditions
 * on inner columns stay in it.
 */
import { t } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { AggregateCall, PlanNode } from "../../plan/logical.ts";
import type * as A from "../ast.ts";
import { walkExpr } from "../ast.ts";
import { SqlError } from "../errors.ts";
import { exprKey, resolveExpr, type Scope, type ScopeColumn } from "../expressions.ts";
import { columnRef, CteEnv, exprContext, fieldsOf, mapColumns, mapNode, type QueryPlanner, type Rel } from "./context.ts";
import { containsAggregate } from "./aggregates.ts";
import { checkKeyTypes, conjuncts, joinRels, windowColumnOf } from "./joins.ts";
import { planFrom } from "./relations.ts";
import { planQuery } from "./query.ts";
import { planSelect } from "./select.ts";

type Predicate = Extract<A.Expr, { kind: "in_subquery" | "exists" }>;

const bool = t.boolean();
const call = (name: string, args: Expr[]): Expr => ({ kind: "call", name, args, type: bool });
const ONE: Expr = { kind: "literal", value: 1, type: { kind: "int", bits: 64 } };

/** `NOT x IN (...)` / `NOT EXISTS (...)` as the predicate with `not` flipped; other conjuncts unchanged. */
function predicateOf(e: A.Expr): Predicate | undefined {
  if (e.kind === "in_subquery" || e.kind === "exists") return e;
  if (e.kind === "unary" && e.op === "not") {
    const inner = predicateOf(e.expr);
    return inner && { ...inner, not: !inner.not };
  }
  return undefined;
}

/** Where an IN / EXISTS subquery sits other than as a conjunct of WHERE (they are refused there). */
export function misplacedPredicate(e: A.Expr): Predicate | undefined {
  let found: Predicate | undefined;
  walkExpr(e, (n) => {
    if (found) return false;
    if (n.kind === "in_subquery" || n.kind === "exists") found = n;
  });
  return found;
}

/**
 * The subquery predicates among WHERE's conjuncts, each planned as a semi or
 * anti join of `input`; returns the joined input and the select with the rest
 * of its WHERE.
 */
export function planWherePredicates(p: QueryPlanner, select: A.Select, input: Rel, env: CteEnv): { input: Rel; select: A.Select } {
  if (!select.where) return { input, select };
  const rest: A.Expr[] = [];
  let rel = input;
  for (const c of conjuncts(select.where)) {
    const pred = predicateOf(c);
    if (pred) rel = planPredicate(p, rel, pred, env, conjuncts(select.where));
    else rest.push(c);
  }
  if (rel === input) return { input, select };
  return { input: rel, select: { ...select, where: andAll(rest) } };
}

function andAll(conditions: A.Expr[]): A.Expr | undefined {
  return conditions.length === 0 ? undefined : conditions.reduce((a, b): A.Expr => ({ kind: "binary", op: "and", left: a, right: b, at: a.at }));
}

/**
 * A subquery's FROM planned, and its WHERE split: conditions on its own
 * columns, equalities of an inner and an outer expression (the correlation
 * keys), and other conditions on both (over `combined`: outer, then inner columns).
 */
export function splitCorrelation(p: QueryPlanner, outer: Scope, select: A.Select, env: CteEnv) {
  const from = planFrom(p, select, env);
  const inner = from.scope;
  const innerWhere: A.Expr[] = [];
  const outerKeys: Expr[] = [];
  const innerKeyAsts: A.Expr[] = [];
  const residualAsts: A.Expr[] = [];
  const combined: Scope = { columns: [...outer.columns, ...inner.columns], label: "the subquery and the outer query" };
  for (const c of select.where ? conjuncts(select.where) : []) {
    // A nested IN / EXISTS is the subquery's own business: planSelect plans it there.
    if (misplacedPredicate(c) || tryResolve(c, inner, p)) {
      innerWhere.push(c);
      continue;
    }
    if (c.kind === "binary" && c.op === "=") {
      const pairs: [A.Expr, A.Expr][] = [
        [c.left, c.right],
        [c.right, c.left],
      ];
      const hit = pairs.find(([i, o]) => tryResolve(i, inner, p) && tryResolve(o, outer, p));
      if (hit) {
        const [i, o] = hit;
        const ie = tryResolve(i, inner, p)!;
        const oe = tryResolve(o, outer, p)!;
        checkKeyTypes(oe, ie, c.at);
        outerKeys.push(oe);
        innerKeyAsts.push(i);
        continue;
      }
    }
    // Resolved over both scopes, or the error of why it cannot be.
    resolveExpr(c, combined, exprContext(p, "the subquery's WHERE"));
    residualAsts.push(c);
  }
  return { from, innerWhere, outerKeys, innerKeyAsts, residualAsts, combined };
}

/**
 * A scalar subquery correlated on equalities (`(SELECT max(p) FROM b WHERE
 * b.k = a.k)`), as DataFusion's scalar_subquery_to_join plans it: the
 * aggregate grouped by the inner keys, LEFT joined on them. Undefined when the
 * subquery is not correlated (it is then planned as it is).
 */
export function planCorrelatedScalar(p: QueryPlanner, left: Rel, q: A.Query, envIn: CteEnv): { rel: Rel; valueIndex: number } | undefined {
  const select = q.body;
  if (select.kind !== "select" || !select.where) return undefined;
  const env = envOf(q, envIn);
  const split = splitCorrelation(p, left.scope, select, env);
  if (split.outerKeys.length === 0 && split.residualAsts.length === 0) return undefined;
  if (split.residualAsts.length > 0) {
    throw new SqlError("a correlated scalar subquery correlates only by equalities (inner.k = outer.k); move other conditions on the subquery's own columns into its WHERE", split.residualAsts[0]!.at);
  }
  if (select.groupBy.length > 0 || select.items.length !== 1 || select.items[0]!.kind !== "expr" || !containsAggregate(p, select.items[0]!.expr)) {
    throw new SqlError("a correlated scalar subquery must be one aggregate without GROUP BY (SELECT max(x) FROM t WHERE t.k = outer.k); join the tables instead (JOIN ... ON)", q.at);
  }
  const keyItems: A.SelectItem[] = split.innerKeyAsts.map((e) => ({ kind: "expr", expr: e, at: e.at }));
  const right = planSelect(p, { ...select, items: [...keyItems, select.items[0]!], where: andAll(split.innerWhere), groupBy: split.innerKeyAsts }, env, split.from);
  const scope: Scope = { columns: [...left.scope.columns, ...right.scope.columns.map((c) => ({ ...c, qualifier: undefined, name: `\u0000subquery${c.name}`, nullable: true }))], label: left.scope.label };
  const rel = joinRels(p, left, right, scope, {
    joinType: "left",
    leftKeys: split.outerKeys,
    rightKeys: split.innerKeyAsts.map((_, i) => columnRef(right.scope, i)),
    residual: [],
    residualAt: [],
    at: q.at,
  });
  return { rel, valueIndex: left.scope.columns.length + split.innerKeyAsts.length };
}

/** A subquery taken apart at its correlation: what the right side of the join is, and how it meets the outer row. */
interface Decorrelated {
  right: Rel;
  /** Outer expressions (over the outer row) equal to right columns 0..n-1, for the correlation keys. */
  outerKeys: Expr[];
  /** Right columns of the correlation keys. */
  rightKeys: Expr[];
  /** The IN value's right column. */
  value?: { expr: Expr };
  /** Conditions over [...outer, ...right]. */
  residual: Expr[];
  residualAt: number[];
}

function tryResolve(ast: A.Expr, scope: Scope, p: QueryPlanner): Expr | undefined {
  try {
    return resolveExpr(ast, scope, exprContext(p, "the subquery's WHERE"));
  } catch (err) {
    if (err instanceof SqlError) return undefined;
    throw err;
  }
}

function envOf(q: A.Query, env: CteEnv): CteEnv {
  if (q.with.length === 0) return env;
  const inner = new CteEnv(env);
  for (const cte of q.with) inner.add(cte.name, { query: cte.query });
  return inner;
}

/**
 * Plans the subquery of `pred` against the outer scope. A plain SELECT is
 * split at its correlation; one with GROUP BY, aggregates, DISTINCT or a set
 * operation is planned as it is and may not refer to the outer query.
 */
function decorrelate(p: QueryPlanner, outer: Scope, pred: Predicate, envIn: CteEnv): Decorrelated {
  const q = pred.query;
  const env = envOf(q, envIn);
  const body = q.body;
  const isIn = pred.kind === "in_subquery";
  const plain =
    body.kind === "select" &&
    !body.distinct &&
    body.groupBy.length === 0 &&
    !body.having &&
    !body.items.some((i) => i.kind === "expr" && containsAggregate(p, i.expr));
  if (!plain) {
    const right = planUncorrelated(p, q, envIn);
    if (isIn && right.scope.columns.length !== 1) throw new SqlError(`the subquery of IN gives one column; this one gives ${right.scope.columns.length}`, q.at);
    const value = isIn ? { expr: columnRef(right.scope, 0) } : undefined;
    return { right, outerKeys: [], rightKeys: [], value, residual: [], residualAt: [] };
  }
  const select = body as A.Select;
  const { from, innerWhere, outerKeys, innerKeyAsts, residualAsts, combined } = splitCorrelation(p, outer, select, env);
  if (isIn) {
    const items = select.items;
    if (items.length !== 1 || items[0]!.kind !== "expr") throw new SqlError("the subquery of IN gives one column: SELECT one expression", items[0]?.at ?? select.at);
  }
  // The right side: [IN value], correlation keys, then (for conditions on both sides, or to carry the window) every inner column.
  const valueItem = isIn ? [select.items[0] as Extract<A.SelectItem, { kind: "expr" }>] : [];
  const keyItems: A.SelectItem[] = innerKeyAsts.map((e) => ({ kind: "expr", expr: e, at: e.at }));
  const needsAll = residualAsts.length > 0 || windowColumnOf(from.node) !== undefined;
  const items: A.SelectItem[] = [...valueItem, ...keyItems, ...(needsAll ? [{ kind: "star" as const, at: select.at }] : [])];
  const right = planSelect(p, { ...select, items, where: andAll(innerWhere), orderByAt: undefined, limitAt: undefined }, env, from);
  const offset = valueItem.length;
  const rightKeys = innerKeyAsts.map((_, i) => columnRef(right.scope, offset + i));
  const starAt = offset + innerKeyAsts.length;
  const outerWidth = outer.columns.length;
  const residual = residualAsts.map((c) =>
    mapColumns(resolveExpr(c, combined, exprContext(p, "the subquery's WHERE")), (i) => (i < outerWidth ? i : outerWidth + starAt + (i - outerWidth))),
  );
  const value = isIn ? { expr: columnRef(right.scope, 0) } : undefined;
  return { right, outerKeys, rightKeys, value, residual, residualAt: residualAsts.map((c) => c.at) };
}

/** A subquery that may not refer to the outer query; an unknown column there says so, with the join to write instead. */
function planUncorrelated(p: QueryPlanner, q: A.Query, env: CteEnv): Rel {
  try {
    return planQuery(p, q, env);
  } catch (err) {
    if (!(err instanceof SqlError) || !err.message.startsWith("unknown column")) throw err;
    throw new SqlError(
      `${err.message} (a subquery with GROUP BY, an aggregate or DISTINCT cannot refer to the outer query; ` +
        "join the outer table with it grouped by that key instead: JOIN (SELECT k, max(x) AS m FROM t GROUP BY k) s ON s.k = outer.k)",
      err.offset,
    );
  }
}

/**
 * Whether column `index` of `node`'s rows is never NULL, as far as the plan
 * shows: a NOT NULL source column, a non-NULL constant, a window's bounds, or a
 * column a filter keeps only where it IS NOT NULL, through projections, group
 * keys and the left side of joins that never pad it.
 */
export function neverNull(node: PlanNode, index: number): boolean {
  switch (node.kind) {
    case "source":
      return node.schema.fields[index]?.nullable === false;
    case "changelog":
      return neverNull(node.input, index);
    case "map": {
      const e = node.exprs[index];
      if (!e) return false;
      if (e.kind === "literal") return e.value !== null;
      if (e.kind === "field" && e.expr.kind === "column" && node.input.kind === "window_aggregate") return neverNull(node.input, e.expr.index);
      if (e.kind !== "column") return false;
      return (node.filter !== undefined && filtersNulls(node.filter, e.index)) || neverNull(node.input, e.index);
    }
    case "window_aggregate":
    case "updating_aggregate": {
      if (index < node.keys.length) {
        const k = node.keys[index]!;
        return k.kind === "column" ? neverNull(node.input, k.index) : k.kind === "literal" && k.value !== null;
      }
      // The window column of a window aggregate.
      return node.kind === "window_aggregate" && !node.carried && index === node.keys.length;
    }
    case "join": {
      const leftWidth = node.left.schema.fields.length;
      const semi = node.joinType === "semi" || node.joinType === "anti";
      if (index < leftWidth) return (semi || node.joinType === "inner" || node.joinType === "left") && neverNull(node.left, index);
      return (node.joinType === "inner" || node.joinType === "right") && neverNull(node.right, index - leftWidth);
    }
    default:
      return false;
  }
}

/** Whether `filter` (a conjunction) holds `column IS NOT NULL`, or a comparison of it, which a NULL never passes. */
function filtersNulls(filter: Expr, column: number): boolean {
  if (filter.kind !== "call") return false;
  if (filter.name === "and") return filter.args.some((a) => filtersNulls(a, column));
  const isCol = (e: Expr | undefined) => e?.kind === "column" && e.index === column;
  if (filter.name === "is_not_null") return isCol(filter.args[0]);
  return ["=", "<>", "<", "<=", ">", ">="].includes(filter.name) && (isCol(filter.args[0]) || isCol(filter.args[1]));
}

function planPredicate(p: QueryPlanner, left: Rel, pred: Predicate, env: CteEnv, siblings: A.Expr[]): Rel {
  const d = decorrelate(p, left.scope, pred, env);
  const leftKeys = [...d.outerKeys];
  const rightKeys = [...d.rightKeys];
  let outerValue: Expr | undefined;
  if (pred.kind === "in_subquery") {
    outerValue = resolveExpr(pred.expr, left.scope, exprContext(p, "IN"));
    checkKeyTypes(outerValue, d.value!.expr, pred.at);
    leftKeys.unshift(outerValue);
    rightKeys.unshift(d.value!.expr);
  }
  const windowed = windowColumnOf(left.node) !== undefined;
  // An uncorrelated EXISTS meets every row; a constant key (or the window, when windowed) stands for that.
  if (leftKeys.length === 0 && !windowed) leftKeys.push(ONE), rightKeys.push(ONE);
  const joinType = pred.not ? "anti" : "semi";
  const joined = joinRels(p, left, d.right, left.scope, { joinType, leftKeys, rightKeys, residual: d.residual, residualAt: d.residualAt, at: pred.at });
  if (!(pred.kind === "in_subquery" && pred.not)) return joined;
  // NOT IN is unknown (so the row is dropped) when the outer value is NULL or the subquery holds a NULL, unless the subquery is empty.
  // An outer NULL matters only if no other condition of the WHERE drops it anyway (`x IS NOT NULL AND x NOT IN ...`).
  const outerKey = exprKey(outerValue!);
  const droppedAnyway = siblings.some((c) => c.kind === "is" && c.test === "null" && c.not && exprKey(resolveExpr(c.expr, left.scope, exprContext(p, "WHERE"))) === outerKey);
  const outerNullable = !droppedAnyway && !(outerValue!.kind === "column" && neverNull(left.node, outerValue!.index)) && !(outerValue!.kind === "literal" && outerValue!.value !== null);
  if (!outerNullable && neverNull(d.right.node, 0)) return joined;
  if (windowed) {
    throw new SqlError(
      "NOT IN over windowed inputs is supported only where neither side can be NULL (a NULL in the subquery makes NOT IN unknown for every row of the window); " +
        "filter the NULLs out on both sides (x IS NOT NULL AND x NOT IN (SELECT y ... WHERE y IS NOT NULL)), or write NOT EXISTS (SELECT ... WHERE y = x), which treats NULLs as no match",
      pred.at,
    );
  }
  return nullAwareAnti(p, joined, d, outerValue!);
}

/**
 * NOT IN with NULLs, over unwindowed input: the anti join's rows, joined with
 * the count of the subquery's rows and of its non-NULL values (per correlation
 * key), keep a row when the subquery is empty, or when neither its value nor
 * any of the subquery's is NULL.
 */
function nullAwareAnti(p: QueryPlanner, anti: Rel, d: Decorrelated, outerValue: Expr): Rel {
  const keyCount = d.rightKeys.length;
  const count = (args: Expr[]): AggregateCall => ({ fn: "count", args, distinct: false, star: args.length === 0, type: t.bigint() });
  const aggColumns: ScopeColumn[] = [
    ...d.rightKeys.map((k, i) => ({ name: `\u0000key${i}`, type: k.type, nullable: true })),
    { name: "\u0000n", type: t.bigint(), nullable: true },
    { name: "\u0000nn", type: t.bigint(), nullable: true },
  ];
  const counts: PlanNode = {
    kind: "updating_aggregate",
    input: d.right.node,
    keys: d.rightKeys,
    aggregates: [count([]), count([d.value!.expr])],
    schema: { fields: aggColumns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })) },
    updating: true,
    ttl: p.updatingTtl,
    ttlRetract: p.updatingTtlRetract,
  };
  const width = anti.scope.columns.length;
  const aggScope: Scope = { columns: aggColumns, label: "the subquery" };
  const joinedScope: Scope = { columns: [...anti.scope.columns, ...aggColumns], label: "NOT IN" };
  const joined = joinRels(p, anti, { node: counts, scope: aggScope }, joinedScope, {
    joinType: "left",
    leftKeys: keyCount > 0 ? d.outerKeys : [ONE],
    rightKeys: keyCount > 0 ? aggColumns.slice(0, keyCount).map((_, i) => columnRef(aggScope, i)) : [ONE],
    residual: [],
    residualAt: [],
    at: 0,
  });
  const n = columnRef(joinedScope, width + keyCount);
  const nn = columnRef(joinedScope, width + keyCount + 1);
  const zero: Expr = { kind: "literal", value: 0, type: t.bigint() };
  const keep = call("or", [call("or", [call("is_null", [n]), call("=", [n, zero])]), call("and", [call("is_not_null", [outerValue]), call("=", [n, nn])])]);
  const exprs = anti.scope.columns.map((_, i) => columnRef(joinedScope, i));
  return { node: mapNode(joined.node, exprs, keep, fieldsOf(anti.scope)), scope: anti.scope };
}
