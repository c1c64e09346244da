/** Windows: tumble, hop and session in GROUP BY. */
import type { Expr } from "../../expr/expr.ts";
import { t } from "../../plugin-api/index.ts";
import type { WindowSpec } from "../../plan/logical.ts";
import type * as A from "../ast.ts";
import { SqlError } from "../errors.ts";
import { resolveExpr, WINDOW_FUNCTIONS, type Scope } from "../expressions.ts";
import { exprContext, type QueryPlanner } from "./context.ts";

type Call = Extract<A.Expr, { kind: "call" }>;

export function isWindowCall(e: A.Expr): e is Call {
  return e.kind === "call" && !e.over && WINDOW_FUNCTIONS.has(e.name);
}

export function windowSpec(p: QueryPlanner, ast: Call, scope: Scope): WindowSpec {
  const name = ast.name;
  const at = ast.at;
  const args = ast.args.map((a) => {
    const e = resolveExpr(a, scope, exprContext(p, `${name}()`));
    if (e.kind !== "literal" || e.type.kind !== "interval") {
      throw new SqlError(`${name}() takes constant intervals such as INTERVAL '1' MINUTE`, at);
    }
    const v = e.value as number;
    if (!(v > 0)) throw new SqlError(`${name}() needs a positive interval`, at);
    return v;
  });
  const want = name === "hop" ? 2 : 1;
  if (args.length !== want) {
    const usage = name === "hop" ? "hop(slide, width)" : `${name}(${name === "session" ? "gap" : "width"})`;
    throw new SqlError(`${name}() takes ${want} interval(s): ${usage}`, at);
  }
  if (name === "tumble") return { kind: "tumble", width: args[0]! };
  if (name === "session") return { kind: "session", gap: args[0]! };
  const [slide, width] = args as [number, number];
  if (slide > width) throw new SqlError(`hop(slide, width): the slide (${slide / 1e6}s) must not exceed the width (${width / 1e6}s)`, at);
  if (width % slide !== 0) throw new SqlError(`hop(slide, width): the width must be a whole multiple of the slide`, at);
  return slide === width ? { kind: "tumble", width } : { kind: "hop", slide, width };
}

export function windowExprKey(ast: Call): Expr {
  return { kind: "call", name: ast.name, args: [], type: t.string() };
}
