/** UNION ALL (DataFusion's set_expr.rs); the other set operations are refused. */
import { typeName } from "../../plugin-api/index.ts";
import type { PlanNode } from "../../plan/logical.ts";
import type * as A from "../ast.ts";
import { SqlError } from "../errors.ts";
import { assignable } from "../types.ts";
import type { CteEnv, QueryPlanner, Rel } from "./context.ts";
import { planSetExpr } from "./query.ts";

export function planSetOperation(p: QueryPlanner, op: Extract<A.SetExpr, { kind: "set_operation" }>, env: CteEnv): Rel {
  const name = `${op.op.toUpperCase()}${op.all ? " ALL" : ""}`;
  if (op.op !== "union" || !op.all) throw new SqlError(`${name} is not supported in streaming queries; use UNION ALL`, op.at);
  return union(planSetExpr(p, op.left, env), planSetExpr(p, op.right, env), op.at);
}

export function union(left: Rel, right: Rel, at: number | null): Rel {
  const a = left.scope.columns;
  const b = right.scope.columns;
  if (a.length !== b.length) throw new SqlError(`UNION ALL sides have ${a.length} and ${b.length} columns; they must match`, at);
  for (let i = 0; i < a.length; i++) {
    if (!assignable(b[i]!.type, a[i]!.type)) {
      throw new SqlError(`UNION ALL column ${i + 1} is ${typeName(a[i]!.type)} on the left and ${typeName(b[i]!.type)} on the right`, at);
    }
  }
  const inputs = left.node.kind === "union" ? [...left.node.inputs, right.node] : [left.node, right.node];
  const node: PlanNode = { kind: "union", inputs, schema: left.node.schema, updating: inputs.some((n) => n.updating) };
  return { node, scope: { columns: a.map((c) => ({ ...c, qualifier: undefined })), label: "the union" } };
}
