/**
 * Resolved, typed scalar expressions. (Contract between the SQL front end and the
 * runtime; the SQL front end owns and may extend the variants.)
 */
import type { AsyncUdfOptions, SqlType } from "../plugin-api/index.ts";

export type Expr =
  | { kind: "column"; index: number; name: string; type: SqlType }
  | { kind: "literal"; value: unknown; type: SqlType }
  /** Struct field access: `bid.price`, `window.start`. */
  | { kind: "field"; expr: Expr; name: string; type: SqlType }
  /** A scalar function (built-in or UDF), operators included, by name. */
  | { kind: "call"; name: string; args: Expr[]; type: SqlType }
  | { kind: "case"; operand?: Expr; whens: { when: Expr; then: Expr }[]; otherwise?: Expr; type: SqlType }
  /** `safe`: TRY_CAST, NULL where the value cannot convert. */
  | { kind: "cast"; expr: Expr; type: SqlType; safe?: boolean }
  /** The event time of the current row (µs). */
  | { kind: "event_time"; type: SqlType }
  /** A user-defined function from a plugin (not serialisable: it carries the function). */
  | {
      kind: "udf";
      name: string;
      args: Expr[];
      type: SqlType;
      fn: (...args: any[]) => unknown;
      strict: boolean;
      /** Set for async UDFs, which the planner moves into an async_udf operator ahead of the expression. */
      async?: Required<AsyncUdfOptions>;
    };

/** The expressions `e` is made of, one level down (for walks that look for a kind of node). */
export function childrenOf(e: Expr): Expr[] {
  switch (e.kind) {
    case "column":
    case "literal":
    case "event_time":
      return [];
    case "field":
    case "cast":
      return [e.expr];
    case "call":
    case "udf":
      return e.args;
    case "case": {
      const out: Expr[] = e.operand ? [e.operand] : [];
      for (const w of e.whens) out.push(w.when, w.then);
      if (e.otherwise) out.push(e.otherwise);
      return out;
    }
    default: {
      // A new kind of expression must say what it is made of before any walk may skip it.
      const never: never = e;
      throw new Error(`internal error: childrenOf does not know expression ${(never as Expr).kind}`);
    }
  }
}
