/**
 * A projection over a projection becomes one (Flink's Calc merge): a view's
 * `SELECT bid.price AS price, … WHERE bid IS NOT NULL` under a query's own
 * SELECT built every row twice (in Nexmark q0 the two loops were a quarter of
 * the CPU). Only where the outer map reads plain columns, struct fields or
 * constants of the inner one, so nothing is computed twice or more often; the
 * outer filter runs only on rows the inner one keeps, as before (an error it
 * could raise on the others stays out).
 */
import type { Expr } from "../expr/expr.ts";
import type { LogicalPipeline, PlanNode } from "../plan/logical.ts";
import { rewritePlan } from "../plan/rewrite.ts";
import { replaceColumns } from "./planner/context.ts";

/** Costs nothing to compute again and cannot fail. */
function trivial(e: Expr): boolean {
  return e.kind === "column" || e.kind === "literal" || (e.kind === "field" && trivial(e.expr));
}

function fused(node: Extract<PlanNode, { kind: "map" }>): PlanNode {
  const inner = node.input;
  if (inner.kind !== "map" || node.updating || inner.updating) return node;
  let simple = true;
  const inline = (e: Expr) =>
    replaceColumns(e, (c) => {
      const x = inner.exprs[c.index]!;
      if (!trivial(x)) simple = false;
      return x;
    });
  const exprs = node.exprs.map(inline);
  const outer = node.filter && inline(node.filter);
  if (!simple) return node;
  const boolean = { kind: "boolean" } as const;
  // CASE evaluates its THEN only where WHEN is true (AND would also evaluate it where the inner filter is NULL).
  const filter: Expr | undefined =
    inner.filter && outer ? { kind: "case", whens: [{ when: inner.filter, then: outer }], otherwise: { kind: "literal", value: false, type: boolean }, type: boolean } : (inner.filter ?? outer);
  return { ...node, input: inner.input, exprs, filter };
}

export function fuseMaps(pipeline: LogicalPipeline): void {
  rewritePlan(pipeline, (node) => (node.kind === "map" ? fused(node) : node));
}
