/**
 * WHERE conjuncts that read one side of a join move below it, onto that side
 * (Flink's FlinkFilterJoinRule, DataFusion's push_down_filter): Nexmark q3's
 * `A.category = 10` and `P.state IN (...)` then keep the join from storing
 * every auction and every person. A conjunct moves only where the result is
 * the same row for row:
 * - an INNER join: a row whose side fails it (false or NULL) joins into rows
 *   that fail it above alike; a LEFT join: conjuncts over the left (preserved)
 *   side, as each left row's output rows depend on that row alone; RIGHT
 *   mirrored. Never the NULL-padded side, nor through a FULL join (a filtered
 *   side changes which rows of the other go unmatched).
 * - the conjunct cannot fail and gives the same value each time (no UDF, no
 *   random() or now(), no cast or arithmetic that may raise): below the join
 *   it also sees rows that never match, where above it did not.
 * - the join (and a projection between it and the filter, which a view or a
 *   subquery in FROM puts there) has no other consumer (a view read twice),
 *   which would then need a second join.
 */
import type { Expr } from "../expr/expr.ts";
import type { LogicalPipeline, PlanNode } from "../plan/logical.ts";
import { rewriteInRounds } from "../plan/rewrite.ts";
import { and, joinSideOf, mapColumns, mapNode, replaceColumns } from "./planner/context.ts";

type JoinNode = Extract<PlanNode, { kind: "join" }>;
type MapNode = Extract<PlanNode, { kind: "map" }>;

/** Built-in operators that never raise and always give the same value for the same arguments. */
const SAFE_CALLS = new Set([
  "=", "<>", "<", "<=", ">", ">=", "and", "or", "not", "is_null", "is_not_null", "is_true", "is_false",
  "is_not_true", "is_not_false", "is_distinct_from", "is_not_distinct_from", "in", "not_in", "between", "not_between", "coalesce",
]);

/** Whether `e` can be evaluated on any row without raising, with the same result each time. */
function safe(e: Expr): boolean {
  switch (e.kind) {
    case "column":
    case "literal":
      return true;
    case "field":
      return safe(e.expr);
    case "cast":
      return e.safe === true && safe(e.expr);
    case "case":
      return (!e.operand || safe(e.operand)) && e.whens.every((w) => safe(w.when) && safe(w.then)) && (!e.otherwise || safe(e.otherwise));
    case "call":
      // LIKE with a constant pattern compiles it once, at planning time; a pattern read from a row may be malformed.
      if ((e.name === "like" || e.name === "ilike" || e.name === "not_like" || e.name === "not_ilike") && e.args[1]?.kind === "literal" && !e.args[2]) return safe(e.args[0]!);
      return SAFE_CALLS.has(e.name) && e.args.every(safe);
    default:
      return false;
  }
}

/** `a AND b AND c` → a, b, c. */
function conjunctsOf(e: Expr): Expr[] {
  return e.kind === "call" && e.name === "and" ? e.args.flatMap(conjunctsOf) : [e];
}

/** `node` with rows failing `conjuncts` (over its own columns) dropped: a filter-only map. */
function filtered(node: PlanNode, conjuncts: Expr[]): PlanNode {
  const fields = node.schema.fields;
  const identity: Expr[] = fields.map((f, index) => ({ kind: "column", index, name: f.name, type: f.type }));
  return mapNode(node, identity, and(conjuncts), fields);
}

/**
 * A filter map over a join (or over a filterless projection of one, as a view
 * or subquery reads it) with some of its conjuncts moved below the join;
 * `node` itself when none may move. `only` says which nodes have one consumer.
 */
function pushed(node: MapNode, only: (n: PlanNode) => boolean): PlanNode {
  const projection = node.input.kind === "map" && !node.input.filter && only(node.input) ? node.input : undefined;
  const join = projection ? projection.input : node.input;
  if (join.kind !== "join" || !only(join)) return node;
  const leftWidth = join.left.schema.fields.length;
  // Which sides a conjunct may move to: a side that is never NULL-padded.
  const toLeft = join.joinType === "inner" || join.joinType === "left";
  const toRight = join.joinType === "inner" || join.joinType === "right";
  const left: Expr[] = [];
  const right: Expr[] = [];
  const kept: Expr[] = [];
  for (const c of conjunctsOf(node.filter!)) {
    // Over the join's row: the projection's expressions in place of its columns (computed below only where they cannot fail).
    const overJoin = projection ? replaceColumns(c, (col) => projection.exprs[col.index]!) : c;
    const side = safe(overJoin) ? joinSideOf(overJoin, leftWidth) : "both";
    if (side === "left" && toLeft) left.push(overJoin);
    else if (side === "right" && toRight) right.push(mapColumns(overJoin, (i) => i - leftWidth));
    else kept.push(c);
  }
  if (left.length === 0 && right.length === 0) return node;
  const below: JoinNode = {
    ...join,
    left: left.length > 0 ? filtered(join.left, left) : join.left,
    right: right.length > 0 ? filtered(join.right, right) : join.right,
  };
  const input = projection ? { ...projection, input: below } : below;
  const filter = kept.length > 0 ? and(kept) : undefined;
  const identity = node.exprs.length === input.schema.fields.length && node.exprs.every((e, i) => e.kind === "column" && e.index === i);
  if (!filter && identity) return input;
  return { ...node, input, filter };
}

export function pushFiltersBelowJoins(pipeline: LogicalPipeline): void {
  rewriteInRounds(pipeline, (node, only) => (node.kind === "map" && node.filter ? pushed(node, only) : node));
}
