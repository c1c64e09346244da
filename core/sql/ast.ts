/**
 * The typed syntax tree of queries and expressions, between node-sql-parser and
 * the planner. `convert.ts` builds it once from the parser's output; the planner
 * reads nothing else. Every node carries `at`, an offset into the user's script
 * (not the rewritten text the parser saw), so errors point where the user wrote
 * the construct.
 */
import type { SqlType } from "../plugin-api/index.ts";

interface Node {
  /** Offset of the node in the user's script. */
  at: number;
}

export interface OrderItem extends Node {
  expr: Expr;
  desc: boolean;
  /** NULLS FIRST / NULLS LAST when written; otherwise DataFusion's default (NULLs last ascending, first descending). */
  nullsFirst?: boolean;
}

/** `n PRECEDING`, `CURRENT ROW`, `UNBOUNDED FOLLOWING`... (`offset` null for UNBOUNDED). */
export interface FrameBound {
  kind: "preceding" | "current" | "following";
  offset: number | null;
  /** A RANGE frame's offset as written (`INTERVAL '1' MINUTE`, `2.5`), resolved by the planner; `offset` is then null. */
  offsetExpr?: Expr;
}

export interface WindowSpec extends Node {
  partitionBy: Expr[];
  orderBy: OrderItem[];
  frame?: { units: "rows" | "range"; start: FrameBound; end: FrameBound; at: number };
}

export type Expr =
  /** `a`, `t.a`, `t.a.field`: a name path, resolved against the scope. */
  | (Node & { kind: "column"; parts: string[]; /** Where each part is written. */ partAt: number[] })
  | (Node & { kind: "star"; qualifier?: string })
  /** A number as written (integer or with a fraction/exponent). */
  | (Node & { kind: "number"; text: string })
  | (Node & { kind: "string"; value: string })
  | (Node & { kind: "boolean"; value: boolean })
  | (Node & { kind: "null" })
  /** `TIMESTAMP '...'` (DATE and TIME literals are refused where converted). */
  | (Node & { kind: "timestamp"; value: string })
  | (Node & { kind: "interval"; value: string; unit: string })
  | (Node & { kind: "unary"; op: "not" | "-" | "+"; expr: Expr })
  /**
   * Binary operators, lower case: and, or, =, <>, <, <=, >, >=, +, -, *, /, %, ||,
   * ->, ->>, ?, ~, ~*, !~, !~*, is distinct from, is not distinct from.
   */
  | (Node & { kind: "binary"; op: string; left: Expr; right: Expr })
  | (Node & { kind: "between"; not: boolean; expr: Expr; low: Expr; high: Expr })
  | (Node & { kind: "in_list"; not: boolean; expr: Expr; list: Expr[] })
  | (Node & { kind: "in_subquery"; not: boolean; expr: Expr; query: Query })
  | (Node & { kind: "like"; not: boolean; caseInsensitive: boolean; expr: Expr; pattern: Expr; escape?: Expr })
  | (Node & { kind: "is"; not: boolean; expr: Expr; test: "null" | "true" | "false" | "unknown" })
  | (Node & { kind: "case"; operand?: Expr; whens: { when: Expr; then: Expr; at: number }[]; otherwise?: Expr })
  /** CAST, `::` and TRY_CAST (`safe`). */
  | (Node & { kind: "cast"; expr: Expr; type: SqlType; safe: boolean })
  | (Node & { kind: "extract"; field: string; source: Expr })
  /**
   * A function call of any kind: scalar, aggregate (with DISTINCT, FILTER, ORDER
   * BY, WITHIN GROUP) or window function (with OVER). Which it is depends on the
   * name, looked up by the planner.
   */
  | (Node & {
      kind: "call";
      name: string;
      args: Expr[];
      /** `count(*)`. */
      star: boolean;
      distinct: boolean;
      filter?: Expr;
      /** `array_agg(x ORDER BY y)`, `string_agg(s, ',' ORDER BY y)`. */
      orderBy?: OrderItem[];
      /** `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)`. */
      withinGroup?: OrderItem[];
      over?: WindowSpec;
      /** IGNORE NULLS / RESPECT NULLS of a window function. */
      ignoreNulls?: boolean;
    })
  /** `ARRAY[...]` and `[...]`. */
  | (Node & { kind: "array"; items: Expr[] })
  /** `a[i]`, `m['key']`. */
  | (Node & { kind: "index"; expr: Expr; index: Expr })
  /** A scalar subquery `(SELECT ...)`. */
  | (Node & { kind: "subquery"; query: Query })
  | (Node & { kind: "exists"; not: boolean; query: Query });

export type SelectItem = (Node & { kind: "star"; qualifier?: string }) | (Node & { kind: "expr"; expr: Expr; alias?: string });

export type JoinKind = "inner" | "left" | "right" | "full" | "cross";

/** Flink's `FOR SYSTEM_TIME AS OF s.time` after a table in FROM (a lookup join). */
export interface SystemTime extends Node {
  time: Extract<Expr, { kind: "column" }>;
  /** Set when the converter put it on its table. */
  attached?: boolean;
}

export type FromItem =
  | (Node & {
      kind: "table";
      name: string;
      alias?: string;
      asOf?: SystemTime;
    })
  | (Node & { kind: "derived"; query: Query; alias?: string })
  /** `UNNEST(array) [AS alias [(column)]]` in FROM. */
  | (Node & { kind: "unnest"; expr: Expr; alias?: string; column?: string })
  | (Node & { kind: "join"; join: JoinKind; left: FromItem; right: FromItem; on?: Expr; using?: string[]; comma: boolean });

export interface Select extends Node {
  kind: "select";
  distinct: boolean;
  /** Where DISTINCT is written, when it is. */
  distinctAt?: number;
  items: SelectItem[];
  from: FromItem | null;
  where?: Expr;
  groupBy: Expr[];
  having?: Expr;
  havingAt?: number;
  /** Where ORDER BY / LIMIT were written, for refusals on unbounded streams. */
  orderByAt?: number;
  limitAt?: number;
}

export type SetExpr = Select | (Node & { kind: "set_operation"; op: "union" | "intersect" | "except"; all: boolean; left: SetExpr; right: SetExpr });

export interface Cte extends Node {
  name: string;
  query: Query;
}

export interface Query extends Node {
  kind: "query";
  with: Cte[];
  recursive: boolean;
  body: SetExpr;
}

/** Visits every expression node under `e` (subqueries not entered); `visit` returns false to skip a node's children. */
export function walkExpr(e: Expr, visit: (node: Expr) => boolean | void): void {
  const stack: Expr[] = [e];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (visit(n) === false) continue;
    for (const child of exprChildren(n)) stack.push(child);
  }
}

/** The direct sub-expressions of `e`, OVER clauses and subqueries aside. */
export function exprChildren(e: Expr): Expr[] {
  switch (e.kind) {
    case "unary":
    case "cast":
      return [e.expr];
    case "binary":
      return [e.left, e.right];
    case "between":
      return [e.expr, e.low, e.high];
    case "in_list":
      return [e.expr, ...e.list];
    case "in_subquery":
      return [e.expr];
    case "like":
      return e.escape ? [e.expr, e.pattern, e.escape] : [e.expr, e.pattern];
    case "is":
      return [e.expr];
    case "case":
      return [...(e.operand ? [e.operand] : []), ...e.whens.flatMap((w) => [w.when, w.then]), ...(e.otherwise ? [e.otherwise] : [])];
    case "extract":
      return [e.source];
    case "call":
      return [...e.args, ...(e.filter ? [e.filter] : []), ...(e.orderBy ?? []).map((o) => o.expr), ...(e.withinGroup ?? []).map((o) => o.expr)];
    case "array":
      return e.items;
    case "index":
      return [e.expr, e.index];
    default:
      return [];
  }
}
