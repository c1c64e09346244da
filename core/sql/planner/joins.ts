/**
 * Joins (DataFusion's relation/join.rs): the ON condition's equalities between
 * a left-only and a right-only expression become the join key; other
 * conditions of an inner join filter its output. Both sides windowed (the same
 * tumble/hop window) makes a window join with the window in the key; neither
 * side windowed, an updating join.
 */
import { t, typeName } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { JoinType, PlanNode, WindowSpec } from "../../plan/logical.ts";
import type * as A from "../ast.ts";
import { SqlError } from "../errors.ts";
import { resolveExpr, type Scope } from "../expressions.ts";
import { isNumeric } from "../types.ts";
import { and, exprContext, fieldsOf, filterNode, joinSideOf, mapColumns, type QueryPlanner, type Rel } from "./context.ts";

/** The conjuncts of `e` (`a AND b AND c` → a, b, c). */
export function conjuncts(e: A.Expr): A.Expr[] {
  const out: A.Expr[] = [];
  const stack = [e];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (x.kind === "binary" && x.op === "and") stack.push(x.right, x.left);
    else out.push(x);
  }
  return out;
}

export function planJoin(p: QueryPlanner, left: Rel, right: Rel, item: Extract<A.FromItem, { kind: "join" }>): Rel {
  const at = item.at;
  const forms = "supported: [INNER], LEFT, RIGHT and FULL [OUTER] JOIN ... ON equalities between the two sides";
  if (item.comma) throw new SqlError("comma-separated FROM lists (cross joins) are not supported; write a JOIN ... ON a.key = b.key", at);
  if (item.join === "cross") throw new SqlError(`CROSS JOIN is not supported (${forms})`, at);
  const joinType: JoinType = item.join;
  const leftNullable = joinType === "right" || joinType === "full";
  const rightNullable = joinType === "left" || joinType === "full";
  if (item.using) throw new SqlError(`JOIN ... USING is not supported; write ON a.key = b.key`, at);
  if (!item.on) throw new SqlError(`a JOIN needs ON with an equality between the two sides (a.key = b.key); cross joins are not supported`, at);

  const leftWidth = left.scope.columns.length;
  const leftColumns = left.scope.columns.map((c) => (leftNullable ? { ...c, nullable: true } : c));
  const rightColumns = right.scope.columns.map((c) => (rightNullable ? { ...c, nullable: true } : c));
  const scope: Scope = { columns: [...leftColumns, ...rightColumns], label: "the join" };
  const ctx = exprContext(p, "JOIN ... ON");
  const sideOf = (e: Expr) => joinSideOf(e, leftWidth);
  const toRight = (e: Expr) => mapColumns(e, (i) => i - leftWidth);
  const leftKeys: Expr[] = [];
  const rightKeys: Expr[] = [];
  const residual: Expr[] = [];
  const residualAt: number[] = [];
  for (const c of conjuncts(item.on)) {
    if (c.kind === "binary" && c.op === "=") {
      const a = resolveExpr(c.left, scope, ctx);
      const b = resolveExpr(c.right, scope, ctx);
      const [sa, sb] = [sideOf(a), sideOf(b)];
      const pair = sa === "left" && sb === "right" ? [a, b] : sa === "right" && sb === "left" ? [b, a] : null;
      if (pair) {
        const [l, r] = pair as [Expr, Expr];
        checkKeyTypes(l, r, c.at);
        leftKeys.push(l);
        rightKeys.push(toRight(r));
        continue;
      }
    }
    const e = resolveExpr(c, scope, ctx);
    if (e.type.kind !== "boolean") throw new SqlError(`JOIN ... ON needs boolean conditions, got ${typeName(e.type)}`, c.at);
    residual.push(e);
    residualAt.push(c.at);
  }

  return joinRels(p, left, right, scope, { joinType, leftKeys, rightKeys, residual, residualAt, at });
}

/** Checks that a join key compares like with like. */
export function checkKeyTypes(l: Expr, r: Expr, at: number): void {
  const comparable = l.type.kind === r.type.kind || (isNumeric(l.type) && isNumeric(r.type));
  if (!comparable) throw new SqlError(`the join key compares ${typeName(l.type)} with ${typeName(r.type)}; cast one side`, at);
}

export interface JoinParts {
  joinType: JoinType;
  leftKeys: Expr[];
  rightKeys: Expr[];
  /** Other conditions, over the joined row [...left, ...right], and where each is written. */
  residual: Expr[];
  residualAt: number[];
  at: number;
}

/**
 * The join node of two planned relations: a window join when both carry the
 * same tumble/hop window (which joins the key), an updating join when neither
 * does. `scope` is the output's (the left's alone for semi and anti joins).
 */
export function joinRels(p: QueryPlanner, left: Rel, right: Rel, scope: Scope, parts: JoinParts): Rel {
  const { joinType, residual, residualAt, at } = parts;
  const leftKeys = [...parts.leftKeys];
  const rightKeys = [...parts.rightKeys];
  const lw = windowColumnOf(left.node);
  const rw = windowColumnOf(right.node);
  let window: Extract<PlanNode, { kind: "join" }>["window"];
  if (lw || rw) {
    const shapes = "a window join needs both sides grouped by the same tumble or hop window; an updating join needs neither side windowed";
    if (!lw || !rw) throw new SqlError(`one side of this join is windowed and the other is not (${shapes})`, at);
    if (lw.spec.kind === "session" || rw.spec.kind === "session") throw new SqlError(`session windows cannot be joined, as each key has its own windows (${shapes})`, at);
    if (JSON.stringify(lw.spec) !== JSON.stringify(rw.spec)) throw new SqlError(`the two sides of this join have different windows (${shapes})`, at);
    window = { spec: lw.spec, leftColumn: lw.index, rightColumn: rw.index };
    // The window is part of the key, whether or not ON says a.window = b.window. Its
    // start stands for it: both sides have the same window, and a number hashes faster than a struct.
    const start = (rel: Rel, index: number): Expr => ({
      kind: "field",
      expr: { kind: "column", index, name: "window", type: rel.scope.columns[index]!.type },
      name: "start",
      type: t.timestamp(),
    });
    leftKeys.unshift(start(left, lw.index));
    rightKeys.unshift(start(right, rw.index));
  }
  if (leftKeys.length === 0) {
    throw new SqlError("JOIN ... ON needs an equality between a column of each side (a.key = b.key); cross joins and joins on other conditions are not supported", at);
  }
  const semi = joinType === "semi" || joinType === "anti";
  if (!window && joinType !== "inner" && residual.length > 0) {
    const what = semi ? `a subquery over unwindowed input correlates only by equalities (inner.k = outer.k); move other conditions on the subquery's own columns into its WHERE` : `an updating ${joinType.toUpperCase()} JOIN ... ON takes only equalities between the two sides; filter a side in a subquery, or filter the result with WHERE `;
    throw new SqlError(`${what}${semi ? "" : "(window joins take other conditions)"}`, residualAt[0]!);
  }
  const node: PlanNode = {
    kind: "join",
    left: left.node,
    right: right.node,
    joinType,
    leftKeys,
    rightKeys,
    window,
    schema: { fields: fieldsOf(scope) },
    // A semi join over append-only inputs only ever adds rows; an anti join takes a row back when its first match arrives.
    updating: !window && (joinType === "semi" ? left.node.updating || right.node.updating : joinType !== "inner" || left.node.updating || right.node.updating),
    ttl: window ? undefined : p.updatingTtl,
  };
  // A window join checks its other conditions as it matches, so unmatched outer rows are known.
  if (window && residual.length > 0) return { node: { ...node, condition: and(residual) }, scope };
  if (residual.length === 0) return { node, scope };
  return { node: filterNode(node, scope, and(residual)), scope };
}

/** The column carrying a relation's tumble/hop/session window, when it passes one through from a window aggregate. */
export function windowColumnOf(node: PlanNode): { index: number; spec: WindowSpec } | undefined {
  switch (node.kind) {
    case "window_aggregate":
      return node.carried ? { index: node.carried.keyIndex, spec: node.carried.spec } : { index: node.keys.length, spec: node.window };
    case "map": {
      const inner = windowColumnOf(node.input);
      if (!inner) return undefined;
      const index = node.exprs.findIndex((e) => e.kind === "column" && e.index === inner.index);
      return index >= 0 ? { index, spec: inner.spec } : undefined;
    }
    case "join":
      // The side whose window is never NULL-padded: neither, in a FULL JOIN.
      if (!node.window || node.joinType === "full") return undefined;
      if (node.joinType === "right") return { index: node.left.schema.fields.length + node.window.rightColumn, spec: node.window.spec };
      return { index: node.window.leftColumn, spec: node.window.spec };
    case "window_function":
    case "unnest":
    case "lookup_join":
      return windowColumnOf(node.input);
    default:
      return undefined;
  }
}
