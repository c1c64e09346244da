/**
 * A projection feeding an aggregate keeps only the columns the aggregate reads.
 * Views and `SELECT *` carry every column of a source down to the GROUP BY;
 * in one process that costs little, but the GROUP BY's hash shuffle sends
 * whole rows between workers (Nexmark q5 sent each bid's url and padding to
 * count bids per auction, and spent most of its time encoding them). The
 * aggregate's output is unchanged, so nothing above it is touched.
 */
import type { Expr } from "../expr/expr.ts";
import type { AggregateCall, LogicalPipeline, PlanNode } from "../plan/logical.ts";
import { rewritePlan } from "../plan/rewrite.ts";
import { mapColumns } from "./planner/context.ts";

function used(e: Expr | undefined, into: Set<number>): void {
  if (e) mapColumns(e, (i) => (into.add(i), i));
}

function usedByAggregates(keys: Expr[], aggregates: AggregateCall[]): Set<number> {
  const cols = new Set<number>();
  for (const k of keys) used(k, cols);
  for (const a of aggregates) {
    for (const x of a.args) used(x, cols);
    used(a.filter, cols);
    for (const o of a.orderBy ?? []) used(o.expr, cols);
  }
  return cols;
}

/** `node`'s aggregate over a narrower copy of its input projection, or `node` when nothing can go. */
function narrowed(node: Extract<PlanNode, { kind: "window_aggregate" | "updating_aggregate" }>): PlanNode {
  const input = node.input;
  if (input.kind !== "map") return node;
  const cols = usedByAggregates(node.keys, node.aggregates);
  if (cols.size >= input.exprs.length) return node;
  const kept = [...cols].sort((a, b) => a - b);
  const to = new Map(kept.map((c, i) => [c, i]));
  const remap = (e: Expr) => mapColumns(e, (i) => to.get(i)!);
  const map: PlanNode = { ...input, exprs: kept.map((c) => input.exprs[c]!), schema: { ...input.schema, fields: kept.map((c) => input.schema.fields[c]!) } };
  return {
    ...node,
    input: map,
    keys: node.keys.map(remap),
    aggregates: node.aggregates.map((a) => ({
      ...a,
      args: a.args.map(remap),
      filter: a.filter && remap(a.filter),
      orderBy: a.orderBy?.map((o) => ({ ...o, expr: remap(o.expr) })),
    })),
  };
}

export function pruneAggregateInputs(pipeline: LogicalPipeline): void {
  rewritePlan(pipeline, (node) => (node.kind === "window_aggregate" || node.kind === "updating_aggregate" ? narrowed(node) : node));
}
