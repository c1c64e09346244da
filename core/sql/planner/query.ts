/**
 * Queries: WITH (CTEs, planned once where first read) and the set expression
 * of their body (DataFusion's query.rs and set_expr.rs).
 */
import type * as A from "../ast.ts";
import { SqlError } from "../errors.ts";
import { parseQuery } from "../parse.ts";
import type { TextRange } from "../statements.ts";
import { CteEnv, type QueryPlanner, type Rel } from "./context.ts";
import { planSelect } from "./select.ts";
import { planSetOperation } from "./set-operations.ts";

export function planQueryText(p: QueryPlanner, range: TextRange, env: CteEnv): Rel {
  return planQuery(p, parseQuery(p.sql, range), env);
}

export function planQuery(p: QueryPlanner, q: A.Query, envIn: CteEnv): Rel {
  if (q.recursive) {
    const at = p.sql.slice(q.at).search(/\brecursive\b/i);
    throw new SqlError("recursive CTEs (WITH RECURSIVE) are not supported; a streaming query reads tables declared with CREATE TABLE", at >= 0 ? q.at + at : q.at);
  }
  let env = envIn;
  if (q.with.length > 0) {
    env = new CteEnv(envIn);
    for (const cte of q.with) env.add(cte.name, { query: cte.query });
  }
  return planSetExpr(p, q.body, env);
}

export function planSetExpr(p: QueryPlanner, body: A.SetExpr, env: CteEnv): Rel {
  if (body.kind === "select") return planSelect(p, body, env);
  return planSetOperation(p, body, env);
}
