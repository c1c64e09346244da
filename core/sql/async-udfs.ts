/**
 * Async UDFs cannot run inside a compiled expression: each call is a Promise.
 * This pass moves every async UDF call of a projection or filter into an
 * async_udf operator just ahead of it, which awaits the calls (concurrently, in
 * order or not) and appends their results as columns; the expression then reads
 * those columns. A filter without async calls stays ahead of the calls, so rows
 * it drops are never sent to the UDF.
 */
import { childrenOf, type Expr } from "../expr/expr.ts";
import type { LogicalPipeline, PlanNode } from "../plan/logical.ts";
import { rewritePlan, sourcesOf } from "../plan/rewrite.ts";
import { SqlError } from "./errors.ts";

type UdfCall = Extract<Expr, { kind: "udf" }>;

function asyncCalls(e: Expr | undefined, out: UdfCall[] = []): UdfCall[] {
  if (!e) return out;
  if (e.kind === "udf" && e.async) out.push(e);
  for (const c of childrenOf(e)) asyncCalls(c, out);
  return out;
}

/** `e` with each async call replaced by the column holding its result. */
function readResults(e: Expr, columnOf: Map<UdfCall, number>): Expr {
  const sub = (x: Expr) => readResults(x, columnOf);
  switch (e.kind) {
    case "udf": {
      const col = columnOf.get(e);
      if (col !== undefined) return { kind: "column", index: col, name: e.name, type: e.type };
      return { ...e, args: e.args.map(sub) };
    }
    case "call":
      return { ...e, args: e.args.map(sub) };
    case "field":
    case "cast":
      return { ...e, expr: sub(e.expr) };
    case "case":
      return {
        ...e,
        operand: e.operand && sub(e.operand),
        whens: e.whens.map((w) => ({ when: sub(w.when), then: sub(w.then) })),
        otherwise: e.otherwise && sub(e.otherwise),
      };
    default:
      return e;
  }
}

function hoist(node: Extract<PlanNode, { kind: "map" }>, input: PlanNode): PlanNode {
  const inExprs = node.exprs.flatMap((e) => asyncCalls(e));
  const inFilter = asyncCalls(node.filter);
  const calls = [...inExprs, ...inFilter];
  if (calls.length === 0) return input === node.input ? node : { ...node, input };
  for (const c of calls) {
    const nested = c.args.flatMap((a) => asyncCalls(a));
    if (nested.length > 0) {
      throw new SqlError(`async UDF ${nested[0]!.name}() is an argument of async UDF ${c.name}(); call the inner one in a subquery and pass its column`, null);
    }
  }
  if (input.updating) {
    throw new SqlError(
      `async UDF ${calls[0]!.name}() cannot read an updating result: retracting a row would call it again, and it may answer differently; call it before the aggregate or join`,
      null,
    );
  }
  const width = input.schema.fields.length;
  // Rows a filter without async calls rejects are dropped before any call is made.
  let ahead = input;
  let filter = node.filter;
  if (filter && inFilter.length === 0) {
    const identity: Expr[] = input.schema.fields.map((f, i) => ({ kind: "column", index: i, name: f.name, type: f.type }));
    ahead = { kind: "map", input, exprs: identity, filter, schema: input.schema, updating: false };
    filter = undefined;
  }
  const columnOf = new Map(calls.map((c, i) => [c, width + i] as const));
  const badData = [...sourcesOf(input)].some((s) => s.kind === "source" && s.table.badData === "fail") ? "fail" : "drop";
  const called: PlanNode = {
    kind: "async_udf",
    input: ahead,
    calls,
    badData,
    schema: { fields: [...input.schema.fields, ...calls.map((c, i) => ({ name: `${c.name}_${i}`, type: c.type, nullable: true }))] },
    updating: false,
  };
  return { ...node, input: called, exprs: node.exprs.map((e) => readResults(e, columnOf)), filter: filter && readResults(filter, columnOf) };
}

/** Rewrites the pipeline's plan so no compiled expression calls an async UDF; shared nodes stay shared. */
export function hoistAsyncUdfs(pipeline: LogicalPipeline): void {
  rewritePlan(pipeline, (node) => (node.kind === "map" ? hoist(node, node.input) : node));
}
